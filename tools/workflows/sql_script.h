// SplitSql: a migration file cut into its top-level statements, each with the line
// and column where it starts, for `cambium migrate prepare/complete`
// (migration_runner.h runs them one by one and maps server error positions back to
// the file). The lexer knows what psql's does about where a statement ends:
// '...' strings ('' escapes), E'...' strings (backslash escapes), "identifiers",
// dollar quotes ($$...$$, $tag$...$tag$), -- comments, nested /* */ comments,
// parentheses, and the BEGIN ATOMIC ... END bodies of SQL-standard functions
// (psql's heuristic: inside CREATE [OR REPLACE] FUNCTION|PROCEDURE, BEGIN and
// CASE open a block that END closes).
//
// NeedsOwnTransaction and CheckMigrationStatements classify statements by their
// leading keywords only; they do not parse SQL.
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_TOOLS_WORKFLOWS_SQL_SCRIPT_H_
#define CAMBIUM_TOOLS_WORKFLOWS_SQL_SCRIPT_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cambium::workflows {

struct SqlStatement {
  // The statement without its terminating semicolon, leading comments and
  // surrounding whitespace.
  std::string text;
  int line = 1;       // 1-based line of text[0] in the script
  int column = 1;     // 1-based column (in characters) of text[0]
  size_t offset = 0;  // byte offset of text[0] in the script
};

// Splits `script` at top-level semicolons. Statements that are empty or only
// comments are dropped. INVALID_ARGUMENT naming the line where it starts for an
// unterminated quote, quoted identifier, dollar quote or block comment.
absl::StatusOr<std::vector<SqlStatement>> SplitSql(std::string_view script);

// True for statements Postgres refuses inside a transaction block: CREATE/DROP
// INDEX CONCURRENTLY, REINDEX ... CONCURRENTLY and REINDEX SCHEMA/DATABASE/SYSTEM,
// VACUUM, CREATE/DROP DATABASE, ALTER DATABASE ... SET TABLESPACE, CREATE/DROP
// TABLESPACE, ALTER SYSTEM, CLUSTER without a table, CREATE/DROP SUBSCRIPTION,
// ALTER SUBSCRIPTION ... REFRESH, DISCARD ALL, COMMIT/ROLLBACK PREPARED.
bool NeedsOwnTransaction(const SqlStatement& statement);

// INVALID_ARGUMENT naming the line of the first statement a migration file must not
// contain: transaction control (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK,
// ABORT, SAVEPOINT, RELEASE, PREPARE TRANSACTION), because the runner decides where
// transactions begin and end.
absl::Status CheckMigrationStatements(const std::vector<SqlStatement>& statements);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_SQL_SCRIPT_H_
