// RunMigration: runs the statements of a migration file (SplitSql, sql_script.h)
// against a database and reports, per statement, what it cost: how long it took,
// which relation-level locks it took, and which relations it rewrote (a new
// relfilenode for the same oid). Used by `cambium migrate prepare` on a branch, so
// the user sees the locks and rewrites before running the same file on main.
//
// Mode: the whole file in one transaction ("single_transaction"), unless a
// statement cannot run in a transaction block (NeedsOwnTransaction); then every
// statement commits on its own ("per_statement") and those statements run bare, in
// autocommit, where their locks cannot be observed. A failing statement rolls back
// its transaction and stops the run; the report says which statements had already
// committed. MigrationOptions::timeout bounds the whole run: statement_timeout is
// set (for the session) to what is left of it before every statement, so a timeout
// is the server's SQLSTATE 57014, like any other statement failure.
//
// Locks are read from pg_locks (this backend, granted, relation locks on
// non-catalog relations, oid >= 16384) before and after each statement inside its
// transaction; a statement's locks are the modes it newly holds, strongest per
// relation. Rewrites compare pg_class.relfilenode of tables, indexes, materialized
// views and TOAST tables before and after.
//
// Thread-safety: uses `conn` exclusively for the duration of the call.
#ifndef CAMBIUM_TOOLS_WORKFLOWS_MIGRATION_RUNNER_H_
#define CAMBIUM_TOOLS_WORKFLOWS_MIGRATION_RUNNER_H_

#include <libpq-fe.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tools/workflows/sql_script.h"

namespace cambium::workflows {

struct MigrationOptions {
  // The whole run, all statements together. Default: 10 minutes.
  absl::Duration timeout = absl::Minutes(10);
};

struct LockTaken {
  std::string relation;  // schema-qualified, quote_ident-quoted
  std::string mode;      // Postgres' name, e.g. "AccessExclusiveLock"
};

struct RelationRewrite {
  std::string relation;
  std::string kind;  // "table", "index", "materialized_view", "toast"
  uint32_t old_relfilenode = 0;
  uint32_t new_relfilenode = 0;
};

struct StatementReport {
  int index = 0;  // 0-based position in the statements
  int line = 0;
  std::string summary;  // the text, whitespace collapsed, at most 200 characters
  double duration_ms = 0;
  // Strongest newly taken mode per relation; nullopt when the statement ran bare
  // (autocommit), where they cannot be observed (see note).
  std::optional<std::vector<LockTaken>> locks;
  std::vector<RelationRewrite> rewrites;
  std::string note;  // empty, or why something is missing
};

struct MigrationFailure {
  int index = 0;  // the failing statement; -1 when the final COMMIT failed
  int line = 0;   // where the statement starts in the file
  int column = 0;
  std::string sqlstate;  // empty for a client-side error (connection lost)
  std::string message;
  std::string detail;
  std::string hint;
  // Where in the file the server's error position points, if it gave one.
  std::optional<int> error_line;
  std::optional<int> error_column;
  // Statements whose changes stay (per_statement mode); the rest were rolled back.
  std::vector<int> committed;
};

struct MigrationReport {
  enum class Mode { kSingleTransaction, kPerStatement };

  bool ok = true;
  Mode mode = Mode::kSingleTransaction;
  std::vector<StatementReport> statements;  // those that succeeded, in order
  std::optional<MigrationFailure> failed;
};

// Runs `statements` as described above. A statement error is a report with
// ok=false, not an error status. INVALID_ARGUMENT if the statements contain
// transaction control (CheckMigrationStatements); FAILED_PRECONDITION if `conn` is
// not idle; INTERNAL if the runner's own bookkeeping queries fail.
absl::StatusOr<MigrationReport> RunMigration(PGconn* conn,
                                             const std::vector<SqlStatement>& statements,
                                             const MigrationOptions& options);

// {"ok", "mode": "single_transaction"|"per_statement", "statements": [{"index",
//  "line", "summary", "duration_ms", "locks": [{"relation", "mode"}]|null,
//  "rewrites": [{"relation", "kind", "old_relfilenode", "new_relfilenode"}],
//  "note"}], "failed": null|{"index", "line", "column", "sqlstate", "message",
//  "detail", "hint", "error_line", "error_column", "committed"}}
nlohmann::json ToJson(const MigrationReport& report);

// The report for people: one block per statement, then the failure if any.
std::string FormatReport(const MigrationReport& report);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_MIGRATION_RUNNER_H_
