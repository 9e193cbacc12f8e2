#include "tools/workflows/migration_runner.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "tools/workflows/libpq.h"

namespace cambium::workflows {
namespace {

// Postgres' table-level lock modes, weakest first.
constexpr const char* kLockModes[] = {
    "AccessShareLock", "RowShareLock",          "RowExclusiveLock", "ShareUpdateExclusiveLock",
    "ShareLock",       "ShareRowExclusiveLock", "ExclusiveLock",    "AccessExclusiveLock"};

int LockRank(std::string_view mode) {
  for (int i = 0; i < static_cast<int>(std::size(kLockModes)); ++i) {
    if (mode == kLockModes[i]) return i;
  }
  return -1;
}

// The runner's bookkeeping queries. Everything is pg_catalog-qualified because the
// migration may change search_path. Oids below 16384 are initdb's (catalogs, their
// indexes, information_schema): the queries' own locks are all there.
constexpr char kRelationsQuery[] =
    "SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || "
    "pg_catalog.quote_ident(c.relname), c.relkind, c.relfilenode "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.oid >= '16384'::pg_catalog.oid";
constexpr char kLocksQuery[] =
    "SELECT l.relation, l.mode FROM pg_catalog.pg_locks l "
    "WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation' AND l.granted "
    "AND l.relation >= '16384'::pg_catalog.oid";
constexpr char kShowTimeout[] = "SELECT pg_catalog.current_setting('statement_timeout')";
constexpr char kSetTimeout[] = "SELECT pg_catalog.set_config('statement_timeout', $1, false)";

struct Relation {
  std::string name;
  char kind = 0;
  uint32_t relfilenode = 0;
};
using RelationMap = std::map<uint32_t, Relation>;
using LockMap = std::map<uint32_t, std::set<int>>;  // oid -> held mode ranks

uint32_t ToOid(const char* text) {
  uint32_t oid = 0;
  return absl::SimpleAtoi(text, &oid) ? oid : 0;
}

std::string RewriteKind(char relkind) {
  switch (relkind) {
    case 'i':
      return "index";
    case 'm':
      return "materialized_view";
    case 't':
      return "toast";
    default:
      return "table";
  }
}

std::string Summary(std::string_view text) {
  std::string collapsed;
  bool space = false;
  for (char c : text) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      space = !collapsed.empty();
      continue;
    }
    if (space) collapsed.push_back(' ');
    space = false;
    collapsed.push_back(c);
  }
  constexpr size_t kMaxChars = 200;
  size_t chars = 0;
  for (size_t i = 0; i < collapsed.size(); ++i) {
    if ((static_cast<unsigned char>(collapsed[i]) & 0xC0) == 0x80) continue;
    if (++chars > kMaxChars - 3) return collapsed.substr(0, i) + "...";
  }
  return collapsed;
}

// The file position of a 1-based character position in `s`'s text.
std::pair<int, int> FilePosition(const SqlStatement& s, int char_position) {
  int line = s.line, column = s.column, chars = 1;
  for (size_t i = 0; i < s.text.size() && chars < char_position; ++i) {
    const unsigned char c = s.text[i];
    if ((c & 0xC0) == 0x80) continue;
    ++chars;
    if (c == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return {line, column};
}

std::string ErrorField(const PGresult* res, int field) {
  const char* value = res ? PQresultErrorField(res, field) : nullptr;
  return value ? value : "";
}

class Runner {
 public:
  Runner(PGconn* conn, const std::vector<SqlStatement>& statements, const MigrationOptions& options)
      : conn_(conn), statements_(statements), deadline_(absl::Now() + options.timeout) {}

  absl::StatusOr<MigrationReport> Run() {
    CAMBIUM_ASSIGN_OR_RETURN(PgResult shown, Query(kShowTimeout, {}));
    const std::string original_timeout = PQgetvalue(shown.get(), 0, 0);
    const bool per_statement =
        std::any_of(statements_.begin(), statements_.end(), NeedsOwnTransaction);
    report_.mode = per_statement ? MigrationReport::Mode::kPerStatement
                                 : MigrationReport::Mode::kSingleTransaction;
    absl::Status status = per_statement ? RunPerStatement() : RunSingleTransaction();
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) {
      Query(kSetTimeout, {original_timeout}).IgnoreError();
    }
    if (!status.ok()) return status;
    report_.ok = !report_.failed.has_value();
    return std::move(report_);
  }

 private:
  absl::StatusOr<PgResult> Query(const char* sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const std::string& p : params) values.push_back(p.c_str());
    PgResult res(PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(),
                              nullptr, nullptr, 0));
    const ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      return absl::InternalError(absl::StrCat("migration bookkeeping: ", PQerrorMessage(conn_)));
    }
    return res;
  }

  absl::StatusOr<RelationMap> Relations() {
    CAMBIUM_ASSIGN_OR_RETURN(PgResult res, Query(kRelationsQuery, {}));
    RelationMap relations;
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      relations[ToOid(PQgetvalue(res.get(), r, 0))] = {PQgetvalue(res.get(), r, 1),
                                                       PQgetvalue(res.get(), r, 2)[0],
                                                       ToOid(PQgetvalue(res.get(), r, 3))};
    }
    return relations;
  }

  absl::StatusOr<LockMap> Locks() {
    CAMBIUM_ASSIGN_OR_RETURN(PgResult res, Query(kLocksQuery, {}));
    LockMap locks;
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      int rank = LockRank(PQgetvalue(res.get(), r, 1));
      if (rank >= 0) locks[ToOid(PQgetvalue(res.get(), r, 0))].insert(rank);
    }
    return locks;
  }

  // Sets statement_timeout to what is left of the overall timeout; a failure
  // (SQLSTATE 57014) if nothing is left.
  absl::StatusOr<std::optional<MigrationFailure>> ArmTimeout(int index) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline_ - absl::Now());
    if (left_ms < 1) {
      MigrationFailure f = FailureAt(index);
      f.sqlstate = "57014";
      f.message = "the migration's overall timeout expired before this statement";
      return f;
    }
    CAMBIUM_RETURN_IF_ERROR(Query(kSetTimeout, {absl::StrCat(left_ms)}).status());
    return std::nullopt;
  }

  MigrationFailure FailureAt(int index) const {
    MigrationFailure f;
    f.index = index;
    if (index >= 0) {
      f.line = statements_[index].line;
      f.column = statements_[index].column;
    }
    for (int i = 0; i < index && report_.mode == MigrationReport::Mode::kPerStatement; ++i) {
      f.committed.push_back(i);
    }
    return f;
  }

  MigrationFailure ServerFailure(int index, const PGresult* res) const {
    MigrationFailure f = FailureAt(index);
    f.sqlstate = ErrorField(res, PG_DIAG_SQLSTATE);
    f.message = ErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (f.message.empty()) {
      f.message = std::string(absl::StripTrailingAsciiWhitespace(PQerrorMessage(conn_)));
    }
    f.detail = ErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    f.hint = ErrorField(res, PG_DIAG_MESSAGE_HINT);
    int position = 0;
    if (index >= 0 && absl::SimpleAtoi(ErrorField(res, PG_DIAG_STATEMENT_POSITION), &position)) {
      auto [line, column] = FilePosition(statements_[index], position);
      f.error_line = line;
      f.error_column = column;
    }
    return f;
  }

  // A migration file has no data to feed COPY FROM STDIN: the COPY is ended with an
  // error. COPY TO STDOUT output is discarded. Returns the statement's final result.
  PgResult FinishCopy(PgResult res) {
    const ExecStatusType st = PQresultStatus(res.get());
    if (st != PGRES_COPY_IN && st != PGRES_COPY_OUT) return res;
    if (st == PGRES_COPY_IN) {
      PQputCopyEnd(conn_, "COPY FROM STDIN is not supported in a migration file");
    } else {
      char* row = nullptr;
      while (PQgetCopyData(conn_, &row, 0) > 0) PQfreemem(row);
    }
    PgResult last;
    while (PGresult* next = PQgetResult(conn_)) last.reset(next);
    return last;
  }

  // Runs statement `index`; fills `out` or returns the failure.
  std::optional<MigrationFailure> Execute(int index, StatementReport& out) {
    const SqlStatement& s = statements_[index];
    out.index = index;
    out.line = s.line;
    out.summary = Summary(s.text);
    const absl::Time start = absl::Now();
    PgResult res = FinishCopy(PgResult(PQexec(conn_, s.text.c_str())));
    out.duration_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    const ExecStatusType st = PQresultStatus(res.get());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
      return std::nullopt;
    }
    return ServerFailure(index, res.get());
  }

  static std::vector<RelationRewrite> Rewrites(const RelationMap& before,
                                               const RelationMap& after) {
    std::vector<RelationRewrite> rewrites;
    for (const auto& [oid, rel] : after) {
      auto it = before.find(oid);
      if (it == before.end() || rel.relfilenode == 0 || it->second.relfilenode == 0) continue;
      if (rel.relfilenode != it->second.relfilenode) {
        rewrites.push_back(
            {rel.name, RewriteKind(rel.kind), it->second.relfilenode, rel.relfilenode});
      }
    }
    return rewrites;
  }

  static std::vector<LockTaken> NewLocks(const LockMap& before, const LockMap& after,
                                         const RelationMap& names_before,
                                         const RelationMap& names_after) {
    // By name, the strongest mode: a rewrite locks the old and the new relation of
    // one name (an index rebuilt, a TOAST table swapped in). A relation named neither
    // before nor after the statement is its own scratch (a rewrite's transient heap).
    std::map<std::string, int> strongest_by_name;
    for (const auto& [oid, ranks] : after) {
      auto held = before.find(oid);
      int strongest = -1;
      for (int rank : ranks) {
        if (held == before.end() || !held->second.contains(rank)) strongest = rank;
      }
      if (strongest < 0) continue;
      std::string name;
      if (auto it = names_after.find(oid); it != names_after.end()) name = it->second.name;
      if (auto it = names_before.find(oid); it != names_before.end()) name = it->second.name;
      if (name.empty()) continue;
      int& rank = strongest_by_name.try_emplace(name, strongest).first->second;
      rank = std::max(rank, strongest);
    }
    std::vector<LockTaken> taken;
    for (const auto& [name, rank] : strongest_by_name) taken.push_back({name, kLockModes[rank]});
    return taken;
  }

  // Statement `index` inside the open transaction, with its locks and rewrites.
  absl::StatusOr<std::optional<MigrationFailure>> RunInTransaction(int index) {
    CAMBIUM_ASSIGN_OR_RETURN(auto expired, ArmTimeout(index));
    if (expired) return expired;
    CAMBIUM_ASSIGN_OR_RETURN(RelationMap relations_before, Relations());
    CAMBIUM_ASSIGN_OR_RETURN(LockMap locks_before, Locks());
    StatementReport out;
    if (auto failure = Execute(index, out)) return failure;
    CAMBIUM_ASSIGN_OR_RETURN(LockMap locks_after, Locks());
    CAMBIUM_ASSIGN_OR_RETURN(RelationMap relations_after, Relations());
    out.locks = NewLocks(locks_before, locks_after, relations_before, relations_after);
    out.rewrites = Rewrites(relations_before, relations_after);
    report_.statements.push_back(std::move(out));
    return std::nullopt;
  }

  // Statement `index` in autocommit: rewrites are observable, locks are not.
  absl::StatusOr<std::optional<MigrationFailure>> RunBare(int index) {
    CAMBIUM_ASSIGN_OR_RETURN(auto expired, ArmTimeout(index));
    if (expired) return expired;
    CAMBIUM_ASSIGN_OR_RETURN(RelationMap relations_before, Relations());
    StatementReport out;
    if (auto failure = Execute(index, out)) return failure;
    CAMBIUM_ASSIGN_OR_RETURN(RelationMap relations_after, Relations());
    out.rewrites = Rewrites(relations_before, relations_after);
    out.note =
        "ran outside a transaction block (autocommit): its locks are released before they "
        "can be observed";
    report_.statements.push_back(std::move(out));
    return std::nullopt;
  }

  // COMMIT; a failure (deferred constraints, lost connection) is reported at `index`.
  std::optional<MigrationFailure> Commit(int index) {
    PgResult res(PQexec(conn_, "COMMIT"));
    if (PQresultStatus(res.get()) == PGRES_COMMAND_OK &&
        ErrorField(res.get(), PG_DIAG_SQLSTATE).empty()) {
      return std::nullopt;
    }
    return ServerFailure(index, res.get());
  }

  void Fail(MigrationFailure failure) {
    if (PQtransactionStatus(conn_) != PQTRANS_IDLE) PgResult(PQexec(conn_, "ROLLBACK"));
    report_.failed = std::move(failure);
  }

  absl::Status RunSingleTransaction() {
    CAMBIUM_RETURN_IF_ERROR(Query("BEGIN", {}).status());
    for (int i = 0; i < static_cast<int>(statements_.size()); ++i) {
      auto failure = RunInTransaction(i);
      if (!failure.ok()) Fail(FailureAt(i));
      CAMBIUM_RETURN_IF_ERROR(failure.status());
      if (*failure) {
        Fail(std::move(**failure));
        return absl::OkStatus();
      }
    }
    if (auto failure = Commit(-1)) Fail(std::move(*failure));
    return absl::OkStatus();
  }

  absl::Status RunPerStatement() {
    for (int i = 0; i < static_cast<int>(statements_.size()); ++i) {
      absl::StatusOr<std::optional<MigrationFailure>> failure;
      if (NeedsOwnTransaction(statements_[i])) {
        failure = RunBare(i);
      } else {
        CAMBIUM_RETURN_IF_ERROR(Query("BEGIN", {}).status());
        failure = RunInTransaction(i);
        if (failure.ok() && !*failure) *failure = Commit(i);
      }
      if (!failure.ok()) Fail(FailureAt(i));
      CAMBIUM_RETURN_IF_ERROR(failure.status());
      if (*failure) {
        Fail(std::move(**failure));
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();
  }

  PGconn* conn_;
  const std::vector<SqlStatement>& statements_;
  const absl::Time deadline_;
  MigrationReport report_;
};

nlohmann::json ToJson(const StatementReport& s) {
  nlohmann::json locks = nullptr;
  if (s.locks) {
    locks = nlohmann::json::array();
    for (const LockTaken& l : *s.locks)
      locks.push_back({{"relation", l.relation}, {"mode", l.mode}});
  }
  nlohmann::json rewrites = nlohmann::json::array();
  for (const RelationRewrite& r : s.rewrites) {
    rewrites.push_back({{"relation", r.relation},
                        {"kind", r.kind},
                        {"old_relfilenode", r.old_relfilenode},
                        {"new_relfilenode", r.new_relfilenode}});
  }
  return {{"index", s.index},
          {"line", s.line},
          {"summary", s.summary},
          {"duration_ms", s.duration_ms},
          {"locks", locks},
          {"rewrites", rewrites},
          {"note", s.note.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.note)}};
}

nlohmann::json ToJson(const MigrationFailure& f) {
  auto optional = [](const std::optional<int>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  return {{"index", f.index},
          {"line", f.line},
          {"column", f.column},
          {"sqlstate", f.sqlstate},
          {"message", f.message},
          {"detail", f.detail},
          {"hint", f.hint},
          {"error_line", optional(f.error_line)},
          {"error_column", optional(f.error_column)},
          {"committed", f.committed}};
}

void AppendStatement(const StatementReport& s, std::string& out) {
  absl::StrAppendFormat(&out, "[%d] line %d (%.1f ms): %s\n", s.index, s.line, s.duration_ms,
                        s.summary);
  if (s.locks) {
    for (const LockTaken& l : *s.locks)
      absl::StrAppend(&out, "    lock ", l.mode, " on ", l.relation, "\n");
    if (s.locks->empty()) absl::StrAppend(&out, "    no new relation locks\n");
  }
  for (const RelationRewrite& r : s.rewrites) {
    absl::StrAppend(&out, "    REWRITES ", r.kind, " ", r.relation, " (relfilenode ",
                    r.old_relfilenode, " -> ", r.new_relfilenode, ")\n");
  }
  if (!s.note.empty()) absl::StrAppend(&out, "    note: ", s.note, "\n");
}

}  // namespace

absl::StatusOr<MigrationReport> RunMigration(PGconn* conn,
                                             const std::vector<SqlStatement>& statements,
                                             const MigrationOptions& options) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
    return absl::FailedPreconditionError("RunMigration needs an idle connection");
  }
  CAMBIUM_RETURN_IF_ERROR(CheckMigrationStatements(statements));
  return Runner(conn, statements, options).Run();
}

nlohmann::json ToJson(const MigrationReport& report) {
  nlohmann::json statements = nlohmann::json::array();
  for (const StatementReport& s : report.statements) statements.push_back(ToJson(s));
  return {{"ok", report.ok},
          {"mode", report.mode == MigrationReport::Mode::kPerStatement ? "per_statement"
                                                                       : "single_transaction"},
          {"statements", statements},
          {"failed", report.failed ? ToJson(*report.failed) : nlohmann::json(nullptr)}};
}

std::string FormatReport(const MigrationReport& report) {
  std::string out =
      absl::StrCat("mode: ",
                   report.mode == MigrationReport::Mode::kPerStatement
                       ? "per statement (a statement cannot run in a transaction block)"
                       : "single transaction",
                   "\n");
  for (const StatementReport& s : report.statements) AppendStatement(s, out);
  if (!report.failed) {
    absl::StrAppend(&out, "OK: ", report.statements.size(), " statements\n");
    return out;
  }
  const MigrationFailure& f = *report.failed;
  if (f.index >= 0) {
    absl::StrAppend(&out, "FAILED at statement ", f.index, " (line ", f.line, ", column ", f.column,
                    "): ");
  } else {
    absl::StrAppend(&out, "FAILED at COMMIT: ");
  }
  absl::StrAppend(&out, f.sqlstate.empty() ? "" : f.sqlstate + " ", f.message, "\n");
  if (f.error_line) {
    absl::StrAppend(&out, "  at line ", *f.error_line, ", column ", *f.error_column, "\n");
  }
  if (!f.detail.empty()) absl::StrAppend(&out, "  detail: ", f.detail, "\n");
  if (!f.hint.empty()) absl::StrAppend(&out, "  hint: ", f.hint, "\n");
  absl::StrAppend(
      &out, f.committed.empty()
                ? "  nothing was committed; the database is unchanged\n"
                : absl::StrCat("  statements already committed: ", absl::StrJoin(f.committed, ", "),
                               "; the failing one was rolled back\n"));
  return out;
}

}  // namespace cambium::workflows
