// libpq for the `cambium` CLI: a connection to an endpoint's Postgres, and a query
// whose result becomes JSON (`cambium query`, issue 13 item 4).
//
// QueryJson's result:
//   {"command": "SELECT 2", "row_count": 2,
//    "columns": [{"name": "id", "type": "int4"}, ...],
//    "rows": [{"id": 1, ...}, ...]}
// Values are typed: NULL is null; bool is true/false; int2/int4/int8/oid and
// float4/float8 are numbers (an int8 beyond 2^53, NaN and infinities stay strings);
// json and jsonb are parsed; everything else (numeric too, to keep its precision)
// is Postgres' text form. A second column with the same name becomes NAME_2 in the
// row objects (its "columns" entry says so). An SQL error is INVALID_ARGUMENT with
// the server's message and error details (kErrorDetailsPayload, tools/cli_usage.h)
// holding its SQLSTATE, detail, hint and position; never the connection's host,
// port or a command line.
//
// Thread-safety: a PgConn is used by one thread at a time.
#ifndef CAMBIUM_TOOLS_PG_CLIENT_H_
#define CAMBIUM_TOOLS_PG_CLIENT_H_

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "tools/workflows/libpq.h"

namespace cambium::cli {

using workflows::PgConn;

// Connects to database `dbname` at `host` (a socket directory or an address) and
// `port`; notices are dropped.
absl::StatusOr<PgConn> Connect(const std::string& host, int port, const std::string& user,
                               const std::string& password, const std::string& dbname = "postgres");

// Runs `sql` (one or more statements; the last one's result) and returns it as JSON.
absl::StatusOr<nlohmann::json> QueryJson(PGconn* conn, const std::string& sql);

// An aligned text table of a QueryJson result, as psql prints one.
std::string FormatTable(const nlohmann::json& result);

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_PG_CLIENT_H_
