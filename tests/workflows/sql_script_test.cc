// SplitSql, NeedsOwnTransaction and CheckMigrationStatements on scripts that trip
// naive splitters: quotes, escapes, dollar quotes, comments, BEGIN ATOMIC bodies.
#include "tools/workflows/sql_script.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cambium::workflows {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Texts(std::string_view script) {
  auto statements = SplitSql(script);
  EXPECT_TRUE(statements.ok()) << statements.status();
  std::vector<std::string> texts;
  if (statements.ok()) {
    for (const SqlStatement& s : *statements) texts.push_back(s.text);
  }
  return texts;
}

SqlStatement Statement(std::string text) { return SqlStatement{std::move(text), 1, 1, 0}; }

TEST(SplitSql, SplitsAtTopLevelSemicolons) {
  EXPECT_THAT(Texts("SELECT 1; SELECT 2;\nSELECT 3"),
              ElementsAre("SELECT 1", "SELECT 2", "SELECT 3"));
}

TEST(SplitSql, DropsEmptyStatementsAndPureComments) {
  EXPECT_THAT(Texts(";;  ;\n-- only a comment\n/* block */ ;SELECT 1;;\n-- trailing"),
              ElementsAre("SELECT 1"));
  EXPECT_THAT(Texts(""), ElementsAre());
  EXPECT_THAT(Texts("  \n\t-- nothing\n"), ElementsAre());
}

TEST(SplitSql, KeepsSemicolonsInsideStrings) {
  EXPECT_THAT(Texts("SELECT 'a;b'; SELECT 'it''s; fine'"),
              ElementsAre("SELECT 'a;b'", "SELECT 'it''s; fine'"));
}

TEST(SplitSql, BackslashDoesNotEscapeInStandardStrings) {
  // standard_conforming_strings: 'a\' is a complete string.
  EXPECT_THAT(Texts("SELECT 'a\\'; SELECT 2"), ElementsAre("SELECT 'a\\'", "SELECT 2"));
}

TEST(SplitSql, BackslashEscapesInEStrings) {
  EXPECT_THAT(Texts("SELECT E'a\\';b'; SELECT e'\\\\'; SELECT 3"),
              ElementsAre("SELECT E'a\\';b'", "SELECT e'\\\\'", "SELECT 3"));
}

TEST(SplitSql, IdentifierEndingInEIsNotAnEString) {
  // "type" ends in e but is a word: the string after it has standard rules.
  EXPECT_THAT(Texts("SELECT 1 AS type, 'x\\'; SELECT 2"),
              ElementsAre("SELECT 1 AS type, 'x\\'", "SELECT 2"));
}

TEST(SplitSql, KeepsSemicolonsInsideQuotedIdentifiers) {
  EXPECT_THAT(Texts("CREATE TABLE \"a;\"\"b\" (x int); SELECT 1"),
              ElementsAre("CREATE TABLE \"a;\"\"b\" (x int)", "SELECT 1"));
}

TEST(SplitSql, KeepsDollarQuotedBodies) {
  const std::string f =
      "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql";
  const std::string g =
      "CREATE FUNCTION g() RETURNS text AS $body$ SELECT '$$;'; $body$ LANGUAGE sql";
  EXPECT_THAT(Texts(f + ";\n" + g + ";\nSELECT 1;"), ElementsAre(f, g, "SELECT 1"));
}

TEST(SplitSql, ParametersAndDollarIdentifiersAreNotDollarQuotes) {
  EXPECT_THAT(Texts("PREPARE p AS SELECT $1; SELECT a$b FROM t; SELECT 2"),
              ElementsAre("PREPARE p AS SELECT $1", "SELECT a$b FROM t", "SELECT 2"));
}

TEST(SplitSql, SkipsCommentsButKeepsThemInsideStatements) {
  EXPECT_THAT(Texts("-- header; not a statement\nSELECT 1 -- a; b\n, 2; /* x; */ SELECT 3"),
              ElementsAre("SELECT 1 -- a; b\n, 2", "SELECT 3"));
}

TEST(SplitSql, NestedBlockComments) {
  EXPECT_THAT(Texts("/* outer /* inner; */ still; comment */ SELECT 1; SELECT 2"),
              ElementsAre("SELECT 1", "SELECT 2"));
}

TEST(SplitSql, BeginAtomicBodyIsOneStatement) {
  const std::string f =
      "CREATE OR REPLACE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
      "BEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND";
  const std::string p = "CREATE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END";
  EXPECT_THAT(Texts(f + ";\n" + p + ";\nSELECT 3;"), ElementsAre(f, p, "SELECT 3"));
}

TEST(SplitSql, CaseEndOutsideRoutinesDoesNotNest) {
  EXPECT_THAT(Texts("SELECT CASE WHEN true THEN 1 END; SELECT 2"),
              ElementsAre("SELECT CASE WHEN true THEN 1 END", "SELECT 2"));
}

TEST(SplitSql, SemicolonsInsideParenthesesOfRoutines) {
  EXPECT_THAT(
      Texts("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2); SELECT 3"),
      ElementsAre("CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2)", "SELECT 3"));
}

TEST(SplitSql, ReportsLineColumnAndOffset) {
  const std::string script = "-- c\n\n  SELECT 1;\n  /* x */ SELECT\n 2;";
  auto statements = SplitSql(script);
  ASSERT_TRUE(statements.ok());
  ASSERT_EQ(statements->size(), 2u);
  EXPECT_EQ((*statements)[0].line, 3);
  EXPECT_EQ((*statements)[0].column, 3);
  EXPECT_EQ(script.substr((*statements)[0].offset, 8), "SELECT 1");
  EXPECT_EQ((*statements)[1].line, 4);
  EXPECT_EQ((*statements)[1].column, 11);
  EXPECT_EQ((*statements)[1].text, "SELECT\n 2");
}

TEST(SplitSql, ColumnsCountCharactersNotBytes) {
  auto statements = SplitSql("SELECT 'é'; SELECT 2");
  ASSERT_TRUE(statements.ok());
  ASSERT_EQ(statements->size(), 2u);
  EXPECT_EQ((*statements)[1].column, 13);
}

TEST(SplitSql, UnterminatedQuotesAndCommentsNameTheLine) {
  const std::pair<const char*, const char*> cases[] = {
      {"SELECT 1;\nSELECT 'abc", "quoted string starting at line 2"},
      {"SELECT 1;\n\nSELECT \"abc", "quoted identifier starting at line 3"},
      {"SELECT E'ab\\'", "quoted string starting at line 1"},
      {"SELECT 1;\nCREATE FUNCTION f() AS $x$ body $y$", "dollar-quoted string starting at line 2"},
      {"SELECT 1; /* a /* b */\n", "block comment starting at line 1"},
  };
  for (const auto& [script, message] : cases) {
    auto statements = SplitSql(script);
    ASSERT_FALSE(statements.ok()) << script;
    EXPECT_EQ(statements.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(statements.status().message(), HasSubstr(message)) << script;
  }
}

TEST(NeedsOwnTransaction, RecognizesStatementsRefusedInTransactionBlocks) {
  for (const char* text : {
           "CREATE INDEX CONCURRENTLY i ON t (x)",
           "create unique index concurrently i on t (x)",
           "/* c */ DROP INDEX CONCURRENTLY IF EXISTS i",
           "REINDEX INDEX CONCURRENTLY i",
           "REINDEX (VERBOSE) TABLE CONCURRENTLY t",
           "REINDEX DATABASE d",
           "REINDEX SCHEMA s",
           "VACUUM",
           "VACUUM (FULL, ANALYZE) t",
           "CREATE DATABASE d",
           "DROP DATABASE d",
           "ALTER DATABASE d SET TABLESPACE ts",
           "CREATE TABLESPACE ts LOCATION '/x'",
           "DROP TABLESPACE ts",
           "ALTER SYSTEM SET work_mem = '64MB'",
           "CLUSTER",
           "CLUSTER VERBOSE",
           "DISCARD ALL",
           "COMMIT PREPARED 'x'",
       }) {
    EXPECT_TRUE(NeedsOwnTransaction(Statement(text))) << text;
  }
}

TEST(NeedsOwnTransaction, OrdinaryStatementsRunInATransaction) {
  for (const char* text : {
           "CREATE INDEX i ON t (x)",
           "CREATE INDEX concurrently_named ON t (x)",
           "DROP INDEX i",
           "REINDEX TABLE t",
           "ANALYZE t",
           "CLUSTER t USING i",
           "ALTER DATABASE d SET work_mem = '1MB'",
           "ALTER TABLE t ADD COLUMN c int",
           "SELECT 'VACUUM'",
           "DISCARD PLANS",
       }) {
    EXPECT_FALSE(NeedsOwnTransaction(Statement(text))) << text;
  }
}

TEST(CheckMigrationStatements, RejectsTransactionControlWithItsLine) {
  for (const char* script : {"SELECT 1;\nBEGIN;\nSELECT 2", "SELECT 1;\ncommit",
                             "SELECT 1;\nSTART TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                             "SELECT 1;\nROLLBACK", "SELECT 1;\nEND", "SELECT 1;\nSAVEPOINT s"}) {
    auto statements = SplitSql(script);
    ASSERT_TRUE(statements.ok());
    absl::Status status = CheckMigrationStatements(*statements);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << script;
    EXPECT_THAT(status.message(), HasSubstr("line 2")) << script;
  }
}

TEST(CheckMigrationStatements, AcceptsBeginAtomicBodiesAndOrdinaryStatements) {
  auto statements = SplitSql(
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
      "ALTER TABLE t ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY i ON t (c);");
  ASSERT_TRUE(statements.ok());
  ASSERT_EQ(statements->size(), 3u);
  EXPECT_TRUE(CheckMigrationStatements(*statements).ok());
}

}  // namespace
}  // namespace cambium::workflows
