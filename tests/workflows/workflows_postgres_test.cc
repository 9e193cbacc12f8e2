// The workflows against a real PostgreSQL 15 (PgCluster): ReadSchema + DiffSchemas
// between databases of one cluster set up differently, and RunMigration's reports
// (locks, rewrites, failures, modes, timeouts). One cluster for the whole binary.
#include <libpq-fe.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/harness/pg_cluster.h"
#include "tools/workflows/libpq.h"
#include "tools/workflows/migration_runner.h"
#include "tools/workflows/schema_catalog.h"
#include "tools/workflows/schema_diff.h"
#include "tools/workflows/sql_script.h"

namespace cambium::workflows {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// In every database.
constexpr char kBase[] =
    "CREATE TABLE public.base (id int PRIMARY KEY, note text, amount int DEFAULT 1, flag bool)";

// One object of every kind ReadSchema reads.
constexpr char kEveryKind[] = R"sql(
CREATE EXTENSION citext;
CREATE SCHEMA app;
CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE app.pair AS (x int, y text);
CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0);
CREATE SEQUENCE app.counter START 10 INCREMENT 5;
CREATE TABLE app.items (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  mood app.mood,
  qty app.posint DEFAULT 1,
  doubled int GENERATED ALWAYS AS (qty * 2) STORED,
  CONSTRAINT qty_small CHECK (qty < 1000));
CREATE INDEX items_name ON app.items (name);
CREATE VIEW app.item_names AS SELECT name FROM app.items;
CREATE MATERIALIZED VIEW app.item_counts AS SELECT mood, count(*) FROM app.items GROUP BY mood;
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE PROCEDURE app.noop() LANGUAGE sql BEGIN ATOMIC SELECT 1; END;
CREATE AGGREGATE app.total(integer) (SFUNC = int4pl, STYPE = integer, INITCOND = '0');
CREATE TRIGGER items_touch BEFORE UPDATE ON app.items FOR EACH ROW EXECUTE FUNCTION app.touch();
ALTER TABLE app.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY items_mine ON app.items FOR SELECT TO wf_reader USING (qty > 0);
GRANT USAGE ON SCHEMA app TO wf_reader;
GRANT SELECT ON app.items TO wf_reader;
)sql";

// Column changes to public.base.
constexpr char kColumnChanges[] =
    "ALTER TABLE public.base DROP COLUMN note, ALTER amount TYPE bigint, "
    "ALTER amount SET DEFAULT 2, ALTER flag SET NOT NULL";

class WorkflowsPostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto cluster = testing::PgCluster::Create();
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = std::move(*cluster).release();
    ASSERT_TRUE(Sql("CREATE ROLE wf_reader").ok());
    for (const char* db : {"a", "b", "c", "m"}) {
      ASSERT_TRUE(Sql(absl::StrFormat("CREATE DATABASE %s", db)).ok());
      ASSERT_TRUE(Sql(kBase, db).ok());
    }
    for (const char* db : {"b", "c"}) {
      auto s = Sql(kEveryKind, db);
      ASSERT_TRUE(s.ok()) << s.status();
      ASSERT_TRUE(Sql(kColumnChanges, db).ok());
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static absl::StatusOr<std::string> Sql(const std::string& sql,
                                         const std::string& db = "postgres") {
    return cluster_->Sql(sql, db);
  }

  static PgConn Connect(const std::string& db) {
    const std::string socket_dir = std::filesystem::path(cluster_->pgdata()).parent_path();
    PgConn conn(PQconnectdb(
        absl::StrFormat("host=%s port=%d user=postgres dbname=%s", socket_dir, cluster_->port(), db)
            .c_str()));
    EXPECT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
    return conn;
  }

  static std::vector<SchemaObject> Schema(const std::string& db) {
    PgConn conn = Connect(db);
    auto schema = ReadSchema(conn.get());
    EXPECT_TRUE(schema.ok()) << schema.status();
    return schema.ok() ? *schema : std::vector<SchemaObject>{};
  }

  static MigrationReport Migrate(const std::string& script,
                                 absl::Duration timeout = absl::Minutes(1)) {
    auto statements = SplitSql(script);
    EXPECT_TRUE(statements.ok()) << statements.status();
    PgConn conn = Connect("m");
    auto report = RunMigration(conn.get(), *statements, {.timeout = timeout});
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : MigrationReport{};
  }

  static testing::PgCluster* cluster_;
};

testing::PgCluster* WorkflowsPostgresTest::cluster_ = nullptr;

const SchemaChange* Find(const std::vector<SchemaChange>& changes, const std::string& kind,
                         const std::string& name) {
  auto it = std::find_if(changes.begin(), changes.end(),
                         [&](const SchemaChange& c) { return c.kind == kind && c.name == name; });
  return it == changes.end() ? nullptr : &*it;
}

// (kind, name) of an object of every kind in kEveryKind.
const std::vector<std::pair<std::string, std::string>>& EveryKind() {
  static const auto* kinds = new std::vector<std::pair<std::string, std::string>>{
      {"extension", "citext"},
      {"schema", "app"},
      {"type", "app.mood"},
      {"type", "app.pair"},
      {"type", "app.posint"},
      {"sequence", "app.counter"},
      {"table", "app.items"},
      {"constraint", "app.items.items_pkey"},
      {"constraint", "app.items.qty_small"},
      {"index", "app.items_name"},
      {"view", "app.item_names"},
      {"materialized_view", "app.item_counts"},
      {"function", "app.touch()"},
      {"function", "app.noop()"},
      {"function", "app.total(integer)"},
      {"trigger", "app.items.items_touch"},
      {"policy", "app.items.items_mine"},
      {"grant", "app TO wf_reader"},
      {"grant", "app.items TO wf_reader"},
  };
  return *kinds;
}

TEST_F(WorkflowsPostgresTest, EqualDatabasesHaveNoChanges) {
  auto b = Schema("b");
  EXPECT_GT(b.size(), EveryKind().size());
  EXPECT_THAT(DiffSchemas(b, Schema("c")), IsEmpty())
      << ToJson(DiffSchemas(b, Schema("c"))).dump(2);
}

TEST_F(WorkflowsPostgresTest, DiffFindsEveryKindAdded) {
  auto changes = DiffSchemas(Schema("a"), Schema("b"));
  for (const auto& [kind, name] : EveryKind()) {
    const SchemaChange* c = Find(changes, kind, name);
    ASSERT_NE(c, nullptr) << kind << " " << name << "\n" << ToJson(changes).dump(2);
    EXPECT_EQ(c->change, SchemaChange::Type::kAdded) << name;
    EXPECT_TRUE(c->from.is_null());
  }
  // Only the explicit grants: the owner's implicit privileges are not objects.
  EXPECT_EQ(std::count_if(changes.begin(), changes.end(),
                          [](const SchemaChange& c) { return c.kind == "grant"; }),
            2);
  // The identity column's sequence belongs to the column.
  EXPECT_EQ(Find(changes, "sequence", "app.items_id_seq"), nullptr);
  const SchemaChange* items = Find(changes, "table", "app.items");
  EXPECT_EQ(items->to["row_security"], true);
  EXPECT_EQ(items->to["columns"][0]["identity"], "always");
  EXPECT_EQ(items->to["columns"][4]["generated"], "((qty)::integer * 2)");
  EXPECT_EQ(Find(changes, "type", "app.mood")->to["labels"],
            nlohmann::json({"sad", "ok", "happy"}));
  EXPECT_EQ(Find(changes, "policy", "app.items.items_mine")->to["roles"],
            nlohmann::json({"wf_reader"}));
  EXPECT_EQ(Find(changes, "grant", "app.items TO wf_reader")->to["privileges"],
            nlohmann::json({"SELECT"}));
}

TEST_F(WorkflowsPostgresTest, DiffFindsEveryKindRemoved) {
  auto changes = DiffSchemas(Schema("b"), Schema("a"));
  for (const auto& [kind, name] : EveryKind()) {
    const SchemaChange* c = Find(changes, kind, name);
    ASSERT_NE(c, nullptr) << kind << " " << name;
    EXPECT_EQ(c->change, SchemaChange::Type::kRemoved) << name;
    EXPECT_TRUE(c->to.is_null());
  }
}

TEST_F(WorkflowsPostgresTest, DiffReportsColumnTypeDefaultAndNullability) {
  auto changes = DiffSchemas(Schema("a"), Schema("b"));
  EXPECT_EQ(Find(changes, "table", "public.base"), nullptr) << "only its columns changed";
  const SchemaChange* amount = Find(changes, "column", "public.base.amount");
  ASSERT_NE(amount, nullptr);
  EXPECT_EQ(amount->change, SchemaChange::Type::kChanged);
  EXPECT_EQ(amount->from["type"], "integer");
  EXPECT_EQ(amount->to["type"], "bigint");
  EXPECT_EQ(amount->from["default"], "1");
  EXPECT_EQ(amount->to["default"], "2");
  const SchemaChange* flag = Find(changes, "column", "public.base.flag");
  ASSERT_NE(flag, nullptr);
  EXPECT_EQ(flag->from["not_null"], false);
  EXPECT_EQ(flag->to["not_null"], true);
  const SchemaChange* note = Find(changes, "column", "public.base.note");
  ASSERT_NE(note, nullptr);
  EXPECT_EQ(note->change, SchemaChange::Type::kRemoved);

  std::string text = FormatDiff(changes, "a", "b");
  EXPECT_THAT(text, HasSubstr("--- a\n+++ b\n"));
  EXPECT_THAT(text, HasSubstr("@@ column public.base.amount @@\n"));
  EXPECT_THAT(text, HasSubstr("\n-type: integer\n+type: bigint\n"));
  nlohmann::json json = ToJson(changes);
  EXPECT_THAT(json, Contains(nlohmann::json({{"kind", "column"},
                                             {"name", "public.base.note"},
                                             {"change", "removed"},
                                             {"from", note->from},
                                             {"to", nullptr}})));
}

TEST_F(WorkflowsPostgresTest, DestructiveWarningsForDropNarrowAndNotNull) {
  auto forward = DestructiveWarnings(DiffSchemas(Schema("a"), Schema("b")));
  EXPECT_THAT(forward, Contains(HasSubstr("Column public.base.note is dropped")));
  EXPECT_THAT(forward, Contains(HasSubstr("Column public.base.flag becomes NOT NULL")));
  auto back = DestructiveWarnings(DiffSchemas(Schema("b"), Schema("a")));
  EXPECT_THAT(back,
              Contains(HasSubstr("Column public.base.amount narrows from bigint to integer")));
  EXPECT_THAT(back, Contains(HasSubstr("Table app.items is dropped")));
  EXPECT_THAT(back, Contains(HasSubstr("Materialized view app.item_counts is dropped")));
}

TEST_F(WorkflowsPostgresTest, VolatileDefaultRewritesTheTableUnderAccessExclusiveLock) {
  ASSERT_TRUE(
      Sql("CREATE TABLE rw (id int); INSERT INTO rw SELECT generate_series(1, 1000)", "m").ok());
  MigrationReport report =
      Migrate("ALTER TABLE rw ADD COLUMN c timestamptz NOT NULL DEFAULT clock_timestamp();");
  ASSERT_TRUE(report.ok) << FormatReport(report);
  EXPECT_EQ(report.mode, MigrationReport::Mode::kSingleTransaction);
  ASSERT_EQ(report.statements.size(), 1u);
  const StatementReport& s = report.statements[0];
  ASSERT_TRUE(s.locks.has_value());
  EXPECT_THAT(*s.locks, Contains(::testing::AllOf(
                            ::testing::Field(&LockTaken::relation, "public.rw"),
                            ::testing::Field(&LockTaken::mode, "AccessExclusiveLock"))));
  ASSERT_EQ(s.rewrites.size(), 1u) << FormatReport(report);
  EXPECT_EQ(s.rewrites[0].relation, "public.rw");
  EXPECT_EQ(s.rewrites[0].kind, "table");
  EXPECT_NE(s.rewrites[0].old_relfilenode, s.rewrites[0].new_relfilenode);
  nlohmann::json json = ToJson(report);
  EXPECT_EQ(json["mode"], "single_transaction");
  EXPECT_EQ(json["statements"][0]["rewrites"][0]["relation"], "public.rw");
  EXPECT_TRUE(json["failed"].is_null());
}

TEST_F(WorkflowsPostgresTest, ConstantDefaultDoesNotRewrite) {
  ASSERT_TRUE(
      Sql("CREATE TABLE nrw (id int); INSERT INTO nrw SELECT generate_series(1, 1000)", "m").ok());
  MigrationReport report = Migrate("ALTER TABLE nrw ADD COLUMN d int DEFAULT 0");
  ASSERT_TRUE(report.ok) << FormatReport(report);
  ASSERT_EQ(report.statements.size(), 1u);
  EXPECT_THAT(report.statements[0].rewrites, IsEmpty());
  EXPECT_THAT(FormatReport(report), HasSubstr("lock AccessExclusiveLock on public.nrw"));
}

TEST_F(WorkflowsPostgresTest, FailingStatementRollsBackTheWholeFile) {
  MigrationReport report = Migrate(
      "CREATE TABLE fail_a (x int);\n"
      "-- the second statement fails\n"
      "INSERT INTO fail_a\n"
      "  VALUES (1), (2), (no_such_column);\n"
      "CREATE TABLE fail_b (y int);\n");
  EXPECT_FALSE(report.ok);
  ASSERT_TRUE(report.failed.has_value());
  const MigrationFailure& f = *report.failed;
  EXPECT_EQ(f.index, 1);
  EXPECT_EQ(f.line, 3);
  EXPECT_EQ(f.column, 1);
  EXPECT_EQ(f.sqlstate, "42703");
  EXPECT_THAT(f.message, HasSubstr("no_such_column"));
  EXPECT_EQ(f.error_line, 4);
  EXPECT_EQ(f.error_column, 21);
  EXPECT_THAT(f.committed, IsEmpty());
  EXPECT_EQ(*Sql("SELECT to_regclass('public.fail_a') IS NULL", "m"), "t");
  EXPECT_EQ(*Sql("SELECT to_regclass('public.fail_b') IS NULL", "m"), "t");
  EXPECT_EQ(ToJson(report)["failed"]["index"], 1);
  EXPECT_THAT(FormatReport(report), HasSubstr("database is unchanged"));
}

TEST_F(WorkflowsPostgresTest, CreateIndexConcurrentlyRunsPerStatement) {
  ASSERT_TRUE(
      Sql("CREATE TABLE cic (x int); INSERT INTO cic SELECT generate_series(1, 100)", "m").ok());
  MigrationReport report =
      Migrate("CREATE TABLE cic_log (id int);\nCREATE INDEX CONCURRENTLY cic_x ON cic (x);");
  ASSERT_TRUE(report.ok) << FormatReport(report);
  EXPECT_EQ(report.mode, MigrationReport::Mode::kPerStatement);
  EXPECT_EQ(ToJson(report)["mode"], "per_statement");
  ASSERT_EQ(report.statements.size(), 2u);
  EXPECT_TRUE(report.statements[0].locks.has_value());
  EXPECT_FALSE(report.statements[1].locks.has_value());
  EXPECT_FALSE(report.statements[1].note.empty());
  EXPECT_TRUE(ToJson(report)["statements"][1]["locks"].is_null());
  EXPECT_EQ(*Sql("SELECT indisvalid FROM pg_index WHERE indexrelid = 'cic_x'::regclass", "m"), "t");
}

TEST_F(WorkflowsPostgresTest, PerStatementFailureSaysWhatCommitted) {
  MigrationReport report = Migrate(
      "CREATE TABLE ps (x int);\nCREATE INDEX CONCURRENTLY ps_x ON ps (x);\n"
      "CREATE TABLE ps (x int);");
  ASSERT_TRUE(report.failed.has_value());
  EXPECT_EQ(report.failed->index, 2);
  EXPECT_EQ(report.failed->sqlstate, "42P07");
  EXPECT_EQ(report.failed->committed, (std::vector<int>{0, 1}));
  EXPECT_EQ(*Sql("SELECT to_regclass('public.ps_x') IS NOT NULL", "m"), "t");
}

TEST_F(WorkflowsPostgresTest, CopyFromStdinFailsAndLeavesTheConnectionUsable) {
  ASSERT_TRUE(Sql("CREATE TABLE cp (x int)", "m").ok());
  auto statements = SplitSql("INSERT INTO cp VALUES (1);\nCOPY cp FROM STDIN;");
  ASSERT_TRUE(statements.ok());
  PgConn conn = Connect("m");
  auto report = RunMigration(conn.get(), *statements, {});
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->failed.has_value());
  EXPECT_EQ(report->failed->index, 1);
  EXPECT_THAT(report->failed->message, HasSubstr("not supported in a migration file"));
  EXPECT_EQ(*Sql("SELECT count(*) FROM cp", "m"), "0");
  PGresult* res = PQexec(conn.get(), "SELECT 1");
  EXPECT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
}

TEST_F(WorkflowsPostgresTest, TimeoutFailsWith57014) {
  auto statements = SplitSql("SELECT 1;\nSELECT pg_sleep(30);");
  ASSERT_TRUE(statements.ok());
  PgConn conn = Connect("m");
  auto report = RunMigration(conn.get(), *statements, {.timeout = absl::Seconds(1)});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->ok);
  ASSERT_TRUE(report->failed.has_value());
  EXPECT_EQ(report->failed->index, 1);
  EXPECT_EQ(report->failed->sqlstate, "57014");
  // The session's own statement_timeout is back.
  PGresult* res = PQexec(conn.get(), "SHOW statement_timeout");
  EXPECT_STREQ(PQgetvalue(res, 0, 0), "0");
  PQclear(res);
}

TEST_F(WorkflowsPostgresTest, TransactionControlIsRejectedBeforeRunning) {
  auto statements = SplitSql("CREATE TABLE tc (x int);\nCOMMIT;");
  ASSERT_TRUE(statements.ok());
  PgConn conn = Connect("m");
  auto report = RunMigration(conn.get(), *statements, {});
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("line 2"));
  EXPECT_EQ(*Sql("SELECT to_regclass('public.tc') IS NULL", "m"), "t");
}

}  // namespace
}  // namespace cambium::workflows
