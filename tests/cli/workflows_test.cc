// The workflows above branches (issue 12; docs/workflows.md), end to end through the
// CLI on a real stack: snapshots (immutable, protected, restored exactly), `changes`
// between two points (exactly the relations written, created and dropped), `diff
// schema` between branches and points in time, and migration rehearsal (locks,
// rewrites, a failing file leaving the target untouched, complete with a snapshot
// that restores the old state).
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_fixture.h"
#include "tests/harness/exit_guard.h"
#include "tests/harness/postgres_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

using nlohmann::json;

class WorkflowsTest : public testing::CliStackTest {
 protected:
  // The stack of this binary, started by the first test that needs it.
  static std::string MainUrl() {
    static std::string url;
    if (url.empty()) {
      Result up = Cambium({"up"});
      EXPECT_EQ(up.code, 0) << up.err;
      url = up.out.value("connection_string", "");
    }
    return url;
  }
};

std::string Now() { return absl::FormatTime(absl::RFC3339_full, absl::Now(), absl::UTCTimeZone()); }

// NDJSON lines of `cambium changes --json`.
std::vector<json> Lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(json::parse(line, nullptr, false));
  }
  return out;
}

// name -> relation line of a `changes` answer.
std::map<std::string, json> Relations(const std::vector<json>& lines) {
  std::map<std::string, json> out;
  for (const json& l : lines) {
    if (l.value("type", "") == "relation" && l["name"].is_string()) out[l["name"]] = l;
  }
  return out;
}

TEST_F(WorkflowsTest, SnapshotsAreImmutableAndRestoreTheirBranchExactly) {
  const std::string main = MainUrl();
  ASSERT_FALSE(main.empty());
  Psql(main, "CREATE TABLE snap_t (id int PRIMARY KEY); INSERT INTO snap_t VALUES (1)");
  Result snap = Cambium({"snapshot", "create", "main", "--name", "s1"});
  ASSERT_EQ(snap.code, 0) << snap.err;
  EXPECT_EQ(snap.out["branch"], "main");
  Psql(main, "INSERT INTO snap_t VALUES (2)");

  Result list = Cambium({"snapshot", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  ASSERT_EQ(list.out.size(), 1u) << list.out;
  EXPECT_EQ(list.out[0]["name"], "s1");
  EXPECT_FALSE(HasBranch("s1"));  // not a branch to work on

  // Immutable: no endpoint, no unprotect, no delete as a branch.
  EXPECT_NE(Cambium({"endpoint", "start", "s1"}).code, 0);
  EXPECT_NE(Cambium({"branch", "unprotect", "s1"}).code, 0);
  Result del = Cambium({"branch", "delete", "s1"});
  EXPECT_NE(del.code, 0);
  EXPECT_NE(del.err.find("snapshot"), std::string::npos) << del.err;

  // A branch from it sees its state.
  ASSERT_EQ(Cambium({"branch", "create", "from-s1", "--from-snapshot", "s1"}).code, 0);
  Result ep = Cambium({"endpoint", "start", "from-s1"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  EXPECT_EQ(Psql(ep.out["connection_string"], "SELECT count(*) FROM snap_t"), "1");
  ASSERT_EQ(Cambium({"endpoint", "stop", "from-s1"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "from-s1", "--purge"}).code, 0);

  // main back to s1, under its running endpoint; the head it leaves is snapshotted.
  ASSERT_EQ(Cambium({"branch", "unprotect", "main"}).code, 0);
  Result restored = Cambium({"branch", "restore", "main", "--snapshot", "s1"});
  ASSERT_EQ(restored.code, 0) << restored.err;
  const std::string safety = restored.out["safety_snapshot"].get<std::string>();
  EXPECT_EQ(safety.rfind("main-pre-restore-", 0), 0u) << safety;
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM snap_t"), "1");
  Result again = Cambium({"branch", "create", "pre", "--from-snapshot", safety});
  ASSERT_EQ(again.code, 0) << again.err;
  ep = Cambium({"endpoint", "start", "pre"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  EXPECT_EQ(Psql(ep.out["connection_string"], "SELECT count(*) FROM snap_t"), "2");
  ASSERT_EQ(Cambium({"endpoint", "stop", "pre"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "pre", "--purge"}).code, 0);

  // Deleted as a snapshot (to the trash: undoable).
  Result gone = Cambium({"snapshot", "delete", "s1"});
  ASSERT_EQ(gone.code, 0) << gone.err;
  for (const json& s : Cambium({"snapshot", "list"}).out) EXPECT_NE(s["name"], "s1");
}

TEST_F(WorkflowsTest, ChangesListsExactlyTheRelationsWrittenCreatedAndDropped) {
  const std::string main = MainUrl();
  Psql(main,
       "CREATE TABLE ch_a (id int PRIMARY KEY, v text); CREATE TABLE ch_b (id int PRIMARY KEY);"
       "CREATE TABLE ch_gone (id int); CREATE TABLE ch_idx (x int); CREATE TABLE ch_still (y int);"
       "INSERT INTO ch_idx SELECT generate_series(1, 1000); INSERT INTO ch_still VALUES (1);"
       "CHECKPOINT");
  absl::SleepFor(absl::Milliseconds(1200));
  const std::string since = Now();
  absl::SleepFor(absl::Milliseconds(1200));
  Psql(main, "INSERT INTO ch_a SELECT g, repeat('x', 100) FROM generate_series(1, 500) g");
  Psql(main, "INSERT INTO ch_b VALUES (1)");
  Psql(main, "DROP TABLE ch_gone");
  Psql(main, "CREATE INDEX ch_idx_x ON ch_idx (x)");
  Psql(main, "SELECT count(*) FROM ch_still");  // a read is no change
  absl::SleepFor(absl::Seconds(1));

  Result r = Cambium({"changes", "main", "--since", since});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = Lines(r.text);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0]["type"], "range");
  const std::map<std::string, json> rel = Relations(lines);
  std::set<std::string> tables;
  for (const auto& [name, l] : rel) {
    if (l["kind"] == "table") tables.insert(name);
  }
  EXPECT_EQ(tables, (std::set<std::string>{"public.ch_a", "public.ch_b", "public.ch_gone"}))
      << r.text;
  ASSERT_TRUE(rel.count("public.ch_a"));
  EXPECT_GE(rel.at("public.ch_a")["blocks_changed"].get<int>(), 5);
  EXPECT_TRUE(rel.at("public.ch_a")["first_change_time"].is_string());
  EXPECT_TRUE(rel.at("public.ch_gone")["dropped"].get<bool>()) << rel.at("public.ch_gone");
  ASSERT_TRUE(rel.count("public.ch_idx_x")) << r.text;
  EXPECT_EQ(rel.at("public.ch_idx_x")["kind"], "index");
  EXPECT_EQ(rel.at("public.ch_idx_x")["of"], "public.ch_idx");
  EXPECT_TRUE(rel.at("public.ch_idx_x")["created"].get<bool>());
  EXPECT_FALSE(rel.count("public.ch_idx")) << "CREATE INDEX only reads its table";
  EXPECT_FALSE(rel.count("public.ch_still"));
  for (const auto& [name, l] : rel) EXPECT_FALSE(l["system"].get<bool>()) << name;
  // The catalogs changed too (DROP, CREATE INDEX): listed with --system only.
  bool catalog = false;
  for (const json& l : Lines(Cambium({"changes", "main", "--since", since, "--system"}).text)) {
    catalog |= l.value("name", json()).is_string() && l["name"] == "pg_catalog.pg_class";
  }
  EXPECT_TRUE(catalog);

  // Until a point: the first insert only.
  const std::string until = Cambium({"lsn", "main"}).out["lsn"].get<std::string>();
  Psql(main, "INSERT INTO ch_still VALUES (2)");
  absl::SleepFor(absl::Seconds(1));
  Result upto = Cambium({"changes", "main", "--since", since, "--until", until});
  ASSERT_EQ(upto.code, 0) << upto.err;
  EXPECT_FALSE(Relations(Lines(upto.text)).count("public.ch_still")) << upto.text;
  EXPECT_TRUE(Relations(Lines(Cambium({"changes", "main", "--since", since}).text))
                  .count("public.ch_still"));

  // Bad input: a time before the branch existed, a reversed range.
  EXPECT_NE(Cambium({"changes", "main", "--since", "2001-01-01T00:00:00Z"}).code, 0);
  EXPECT_NE(Cambium({"changes", "main", "--since", until, "--until", since}).code, 0);
}

TEST_F(WorkflowsTest, RowsOfATableMatchADirectComparisonOfTheTwoPoints) {
  const std::string main = MainUrl();
  Psql(main,
       "CREATE TABLE rw (id int PRIMARY KEY, v text);"
       "INSERT INTO rw SELECT g, 'v' || g FROM generate_series(1, 20000) g;"
       "CREATE TABLE nopk (x int); INSERT INTO nopk VALUES (1); CHECKPOINT");
  absl::SleepFor(absl::Milliseconds(1200));
  const std::string since = Now();
  absl::SleepFor(absl::Milliseconds(1200));
  Psql(main, "UPDATE rw SET v = 'updated' WHERE id % 1000 = 0");
  Psql(main, "DELETE FROM rw WHERE id BETWEEN 500 AND 510");
  Psql(main, "INSERT INTO rw VALUES (30001, 'new'), (30002, 'new'); INSERT INTO nopk VALUES (2)");
  absl::SleepFor(absl::Seconds(1));

  Result r = Cambium({"changes", "main", "--since", since, "--rows", "rw"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<json> lines = Lines(r.text);
  ASSERT_FALSE(lines.empty());
  const json& head = lines[0];
  EXPECT_EQ(head["compared"], "changed_blocks") << head;
  EXPECT_EQ(head["total_changes"], 33) << head;
  // Only the changed blocks were read, at each point.
  EXPECT_LT(head["rows_read"].get<int>(), 20000) << head;  // both points in full: 40,000
  std::map<int, std::string> got;                          // id -> change
  for (size_t i = 1; i < lines.size(); ++i) {
    got[lines[i]["key"]["id"].get<int>()] = lines[i]["change"];
    if (lines[i]["change"] == "updated") {
      EXPECT_EQ(lines[i]["after"]["v"], "updated");
      EXPECT_EQ(lines[i]["before"]["v"], "v" + std::to_string(lines[i]["key"]["id"].get<int>()));
    }
  }

  // The same answer from the two points directly: a branch at `since` and main.
  ASSERT_EQ(Cambium({"branch", "create", "rw-then", "--at", since}).code, 0);
  Result then = Cambium({"endpoint", "start", "rw-then"});
  ASSERT_EQ(then.code, 0) << then.err;
  auto rows_of = [&](const std::string& url) {
    std::map<int, std::string> out;
    std::istringstream in(Psql(url, "SELECT id || '|' || v FROM rw"));
    for (std::string line; std::getline(in, line);) {
      out[std::stoi(line.substr(0, line.find('|')))] = line.substr(line.find('|') + 1);
    }
    return out;
  };
  const std::map<int, std::string> a = rows_of(then.out["connection_string"]), b = rows_of(main);
  std::map<int, std::string> want;
  for (const auto& [id, v] : a) {
    if (!b.count(id))
      want[id] = "deleted";
    else if (b.at(id) != v)
      want[id] = "updated";
  }
  for (const auto& [id, v] : b) {
    if (!a.count(id)) want[id] = "inserted";
  }
  EXPECT_EQ(got, want);
  ASSERT_EQ(Cambium({"endpoint", "stop", "rw-then"}).code, 0);
  ASSERT_EQ(Cambium({"branch", "delete", "rw-then", "--purge"}).code, 0);

  // Paged; a table without a primary key is refused.
  Result page = Cambium({"changes", "main", "--since", since, "--rows", "rw", "--limit", "5"});
  ASSERT_EQ(page.code, 0) << page.err;
  EXPECT_EQ(Lines(page.text).size(), 6u);
  Result nopk = Cambium({"changes", "main", "--since", since, "--rows", "nopk"});
  EXPECT_NE(nopk.code, 0);
  EXPECT_NE(nopk.err.find("primary key"), std::string::npos) << nopk.err;
}

TEST_F(WorkflowsTest, AMaskedBranchNeverShowsTheOriginalValues) {
  const std::string main = MainUrl();
  Psql(main,
       "CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE, name text, phone text, "
       "  ssn varchar(11), notes text, age int);"
       "INSERT INTO people SELECT g, 'secret' || g || '@corp.example', 'Secretname ' || g, "
       "  '+1 (555) 010-' || lpad(g::text, 4, '0'), '123-45-' || lpad(g::text, 4, '0'), "
       "  repeat('SECRETNOTE', 1000), g FROM generate_series(1, 300) g;"
       "CREATE INDEX people_name ON people (name); ANALYZE people");
  absl::SleepFor(absl::Milliseconds(1200));
  const std::string before = Now();
  absl::SleepFor(absl::Milliseconds(1200));
  auto write_rules = [&](const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
  };
  const std::string rules = write_rules(dir_->Sub("rules.toml"), R"(salt = "pepper"
[[rule]]
table = "people"
column = "email"
function = "fake_email"
[[rule]]
table = "public.people"
column = "name"
function = "fake_name"
[[rule]]
table = "people"
column = "phone"
function = "keep_format"
[[rule]]
table = "people"
column = "ssn"
function = "hash"
[[rule]]
table = "people"
column = "notes"
function = "null"
[[rule]]
table = "people"
column = "age"
function = "value"
value = "42"
)");
  // Bad rules fail before anything is created.
  const std::string unknown =
      write_rules(dir_->Sub("unknown.toml"),
                  "[[rule]]\ntable = \"people\"\ncolumn = \"email\"\nfunction = \"scramble\"\n");
  Result bad = Cambium({"branch", "create", "preview-bad", "--mask", unknown});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("unknown mask function"), std::string::npos) << bad.err;
  const std::string missing =
      write_rules(dir_->Sub("missing.toml"),
                  "[[rule]]\ntable = \"people\"\ncolumn = \"nosuch\"\nfunction = \"null\"\n");
  bad = Cambium({"branch", "create", "preview-bad", "--mask", missing});
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("nosuch"), std::string::npos) << bad.err;
  EXPECT_FALSE(HasBranch("preview-bad"));

  Result created = Cambium({"branch", "create", "preview-7", "--mask", rules});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_EQ(created.out["masked"]["rows"], 300) << created.out;
  Result ep = Cambium({"endpoint", "start", "preview-7"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  const std::string url = ep.out["connection_string"];
  // Nothing original through the heap, an index, TOAST or the statistics.
  EXPECT_EQ(Psql(url,
                 "SELECT count(*) FROM people WHERE email LIKE 'secret%' OR name LIKE "
                 "'Secretname%' OR ssn LIKE '123-45-%' OR phone LIKE '+1 (555) 010-%' OR "
                 "notes IS NOT NULL OR age <> 42"),
            "0");
  EXPECT_EQ(Psql(url,
                 "SET enable_seqscan = off; SELECT count(*) FROM people WHERE email = "
                 "'secret7@corp.example' OR name = 'Secretname 7'"),
            "0");
  EXPECT_EQ(Psql(url,
                 "SET enable_seqscan = off; SELECT count(*) FROM people WHERE name >= "
                 "'Secretname' AND name < 'Secretnamf'"),
            "0");
  EXPECT_EQ(Psql(url,
                 "SELECT count(*) FROM pg_stats WHERE tablename = 'people' AND "
                 "concat(most_common_vals, histogram_bounds) ~ '(?i)secret|123-45'"),
            "0");
  EXPECT_EQ(Psql(url,
                 "SELECT count(*) FROM people WHERE email ~ '^user_[0-9a-f]{12}@example.com$' "
                 "AND phone ~ '^\\+[0-9] \\([0-9]{3}\\) [0-9]{3}-[0-9]{4}$'"),
            "300");
  // Deterministic, distinct: the unique index still holds.
  EXPECT_EQ(Psql(url, "SELECT count(DISTINCT email) FROM people"), "300");
  // Its past is not reachable: no time travel, no branch before its masking.
  EXPECT_NE(Cambium({"query", "preview-7", "--at", before, "--", "SELECT 1"}).code, 0);
  EXPECT_NE(Cambium({"branch", "create", "peek", "--parent", "preview-7", "--at", before}).code, 0);
  EXPECT_NE(Cambium({"branch", "restore", "preview-7", "--at", before}).code, 0);
  // main keeps its data.
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM people WHERE email LIKE 'secret%'"), "300");
  ASSERT_EQ(Cambium({"endpoint", "stop", "preview-7"}).code, 0);
}

TEST_F(WorkflowsTest, DiffSchemaBetweenBranchesAndPointsInTime) {
  const std::string main = MainUrl();
  Psql(main, "CREATE TABLE orders (id int PRIMARY KEY, amount numeric)");
  absl::SleepFor(absl::Milliseconds(1200));
  const std::string before = Now();
  ASSERT_EQ(Cambium({"branch", "create", "dev"}).code, 0);
  Result ep = Cambium({"endpoint", "start", "dev"});
  ASSERT_EQ(ep.code, 0) << ep.err;
  Psql(ep.out["connection_string"],
       "ALTER TABLE orders ADD COLUMN note text; CREATE INDEX orders_amount ON orders (amount)");

  EXPECT_EQ(Cambium({"diff", "schema", "main", "main"}).code, 0);
  Result d = Cambium({"diff", "schema", "main", "dev"});
  ASSERT_EQ(d.code, 1) << d.err;
  std::map<std::string, std::string> change;
  for (const json& c : d.out["changes"]) change[c["name"]] = c["change"];
  EXPECT_EQ(change["public.orders.note"], "added") << d.out;
  EXPECT_EQ(change["public.orders_amount"], "added") << d.out;
  Result back = Cambium({"diff", "schema", "dev", "main"});
  ASSERT_EQ(back.code, 1);
  for (const json& c : back.out["changes"]) EXPECT_EQ(c["change"], "removed") << c;
  // Human output: a readable diff.
  Result text = Cambium({"diff", "schema", "main", "dev"}, /*json_output=*/false);
  EXPECT_EQ(text.code, 1);
  EXPECT_NE(text.text.find("note"), std::string::npos) << text.text;

  // A point in time: main before orders existed.
  Psql(main, "CREATE TABLE later_t (id int)");
  Result past = Cambium({"diff", "schema", "main@" + before, "main"});
  ASSERT_EQ(past.code, 1) << past.err;
  bool later = false;
  for (const json& c : past.out["changes"]) later |= c["name"] == "public.later_t";
  EXPECT_TRUE(later) << past.out;
  EXPECT_NE(Cambium({"diff", "schema", "main@not-a-time", "main"}).code, 0);
  ASSERT_EQ(Cambium({"endpoint", "stop", "dev"}).code, 0);
}

TEST_F(WorkflowsTest, MigrationsAreRehearsedThenAppliedWithASnapshot) {
  const std::string main = MainUrl();
  Psql(main,
       "CREATE TABLE accounts (id int PRIMARY KEY, amount numeric);"
       "INSERT INTO accounts SELECT g, g FROM generate_series(1, 5000) g");
  const std::string file = dir_->Sub("m.sql");
  {
    std::ofstream f(file);
    f << "-- a rewrite\nALTER TABLE accounts ADD COLUMN created timestamptz NOT NULL DEFAULT "
         "clock_timestamp();\nCREATE INDEX accounts_created ON accounts (created);\n";
  }
  Result prep = Cambium({"migrate", "prepare", "main", "--file", file});
  ASSERT_EQ(prep.code, 0) << prep.err << prep.text;
  const std::string id = prep.out["id"];
  EXPECT_TRUE(prep.out["ok"].get<bool>());
  const json& first = prep.out["report"]["statements"][0];
  bool rewrote = false, exclusive = false;
  for (const json& r : first["rewrites"]) rewrote |= r.dump().find("accounts") != std::string::npos;
  for (const json& l : first["locks"]) {
    exclusive |= l.dump().find("accounts") != std::string::npos &&
                 l.dump().find("AccessExclusiveLock") != std::string::npos;
  }
  EXPECT_TRUE(rewrote) << first;
  EXPECT_TRUE(exclusive) << first;
  EXPECT_TRUE(prep.out["connection_string"].is_string());
  EXPECT_EQ(Psql(prep.out["connection_string"].get<std::string>(),
                 "SELECT count(*) FROM accounts WHERE created IS NOT NULL"),
            "5000");
  // main untouched by the rehearsal.
  EXPECT_EQ(Psql(main,
                 "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                 "'created' AND table_name = 'accounts'"),
            "0");

  // A failing file: named statement, nothing changed on the rehearsal's base.
  const std::string bad = dir_->Sub("bad.sql");
  {
    std::ofstream f(bad);
    f << "ALTER TABLE accounts ADD COLUMN x int;\n\nALTER TABLE nosuch ADD COLUMN y int;\n";
  }
  Result failed = Cambium({"migrate", "prepare", "main", "--file", bad});
  EXPECT_EQ(failed.code, 1) << failed.text;
  EXPECT_FALSE(failed.out["ok"].get<bool>());
  EXPECT_EQ(failed.out["report"]["failed"]["index"], 1) << failed.out["report"];
  EXPECT_EQ(failed.out["report"]["failed"]["line"], 3) << failed.out["report"];
  EXPECT_NE(Cambium({"migrate", "complete", failed.out["id"]}).code, 0);
  EXPECT_EQ(Cambium({"migrate", "abandon", failed.out["id"]}).code, 0);

  // main moved since prepare: refused unless --force.
  Psql(main, "INSERT INTO accounts VALUES (5001, 1)");
  Result moved = Cambium({"migrate", "complete", id});
  EXPECT_NE(moved.code, 0);
  EXPECT_NE(moved.err.find("changed since"), std::string::npos) << moved.err;
  EXPECT_EQ(Psql(main,
                 "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                 "'created' AND table_name = 'accounts'"),
            "0");
  Result done = Cambium({"migrate", "complete", id, "--force"});
  ASSERT_EQ(done.code, 0) << done.err << done.text;
  EXPECT_TRUE(done.out["schema_matches_rehearsal"].get<bool>()) << done.out["differences"];
  EXPECT_EQ(Psql(main, "SELECT count(*) FROM accounts WHERE created IS NOT NULL"), "5001");
  const std::string snapshot = done.out["snapshot"];
  EXPECT_FALSE(HasBranch(prep.out["temporary_branch"]));
  bool listed = false;
  for (const json& m : Cambium({"migrate", "list"}).out) {
    listed |= m["id"] == id && m["status"] == "completed";
  }
  EXPECT_TRUE(listed);

  // The snapshot restores the old state exactly.
  Result restored = Cambium({"branch", "restore", "main", "--snapshot", snapshot});
  ASSERT_EQ(restored.code, 0) << restored.err;
  EXPECT_EQ(Psql(main,
                 "SELECT count(*) FROM information_schema.columns WHERE column_name = "
                 "'created' AND table_name = 'accounts'"),
            "0");
  EXPECT_EQ(Psql(main, "SELECT count(*), sum(amount) FROM accounts"), "5001|12502501");
}

}  // namespace
}  // namespace cambium
