// PgClient: a small libpq connection for the chaos suite's clients and checks.
//
// The acknowledged-commit recorder needs to know exactly what the server answered
// to a COMMIT (OK, an error, or a lost connection: in doubt), which psql cannot
// tell it; the checks need rows back. Every call returns a Status: a server error
// is INTERNAL with the server's message, a broken connection is UNAVAILABLE (the
// outcome of the last statement is then unknown).
//
// Thread-safety: a PgClient is used by one thread at a time; Cancel() may be called
// from any thread while another runs a statement.
#ifndef CAMBIUM_TESTS_CHAOS_PG_CLIENT_H_
#define CAMBIUM_TESTS_CHAOS_PG_CLIENT_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct pg_conn;

namespace cambium::chaos {

using Row = std::vector<std::string>;  // NULL reads as ""

class PgClient {
 public:
  // Connects to `conninfo` (a libpq connection string or URI), giving up after
  // `timeout`. A server still starting up (crash recovery after a restart by the
  // supervisor) is asked again until then; any other refusal is returned at once.
  // TCP keepalives are on so that a killed server is noticed.
  static absl::StatusOr<std::unique_ptr<PgClient>> Connect(const std::string& conninfo,
                                                           absl::Duration timeout);
  ~PgClient();
  PgClient(const PgClient&) = delete;
  PgClient& operator=(const PgClient&) = delete;

  // Runs one or more statements; rows of the last one are discarded.
  absl::Status Exec(const std::string& sql);
  // Runs one statement and returns its rows.
  absl::StatusOr<std::vector<Row>> Query(const std::string& sql);
  // The first column of the first row.
  absl::StatusOr<std::string> QueryValue(const std::string& sql);

  // Asks the server to cancel the statement running on this connection.
  void Cancel();
  // False once the connection is known to be broken.
  bool healthy() const;

 private:
  explicit PgClient(pg_conn* conn) : conn_(conn) {}
  absl::StatusOr<std::vector<Row>> Run(const std::string& sql);

  pg_conn* conn_;
  mutable std::mutex cancel_mu_;
};

// The parameters a libpq connection string or URI sets (host, port, user, ...).
absl::StatusOr<std::map<std::string, std::string>> ParseConninfo(const std::string& conninfo);

// Quotes `s` as an SQL string literal.
std::string SqlQuote(const std::string& s);

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_PG_CLIENT_H_
