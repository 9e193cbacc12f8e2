#include "tools/workflows/libpq.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace cambium::workflows {
namespace {

std::string Escaped(char* quoted, const char* fallback) {
  std::string out = quoted ? quoted : fallback;
  PQfreemem(quoted);
  return out;
}

}  // namespace

std::string QuoteLiteral(PGconn* conn, std::string_view text) {
  return Escaped(PQescapeLiteral(conn, text.data(), text.size()), "''");
}

std::string QuoteIdent(PGconn* conn, std::string_view name) {
  return Escaped(PQescapeIdentifier(conn, name.data(), name.size()), "\"\"");
}

absl::Status ExecCommand(PGconn* conn, const std::string& sql, const char* what, int64_t* rows) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return absl::InternalError(absl::StrCat(what, ": ", PQerrorMessage(conn)));
  }
  if (rows) *rows += std::atoll(PQcmdTuples(r.get()));
  return absl::OkStatus();
}

}  // namespace cambium::workflows
