// Small libpq helpers shared by the workflows and the CLI: owning PGconn and PGresult,
// quoting through the connection's own rules, and a command run whose error never
// repeats the statement (it may carry a password verifier or user data).
//
// Thread-safety: as the PGconn passed in (one thread at a time).
#ifndef CAMBIUM_TOOLS_WORKFLOWS_LIBPQ_H_
#define CAMBIUM_TOOLS_WORKFLOWS_LIBPQ_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace cambium::workflows {

struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;
struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

// 'text' and "name" quoted as the server expects (PQescapeLiteral /
// PQescapeIdentifier); '' and "" if libpq cannot (out of memory, bad encoding).
std::string QuoteLiteral(PGconn* conn, std::string_view text);
std::string QuoteIdent(PGconn* conn, std::string_view name);

// Runs `sql` (one or more commands). INTERNAL with "<what>: <server message>" on
// failure. `rows`, if given, gains the last command's affected rows (PQcmdTuples).
absl::Status ExecCommand(PGconn* conn, const std::string& sql, const char* what,
                         int64_t* rows = nullptr);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_LIBPQ_H_
