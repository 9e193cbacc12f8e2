// PostgresProcess: a `postgres` server on an existing data directory, run as the
// `postgres` user on 127.0.0.1, with SQL (psql) and load (pgbench) against it as the
// superuser through the peer-authenticated Unix socket (nothing trusts anyone). Used by
// PgCluster (its own initdb'd directory) and by endpoints on a Cambium mount.
//
// The destructor stops the server (fast, then immediate, then SIGKILL).
//
// Thread-safety: Sql/Pgbench may be called from several threads; Start/Stop/Crash
// from one.
#ifndef CAMBIUM_TESTS_HARNESS_POSTGRES_PROCESS_H_
#define CAMBIUM_TESTS_HARNESS_POSTGRES_PROCESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/subprocess.h"

namespace cambium::testing {

// Directory of the PostgreSQL 15 binaries: $CAMBIUM_PG_BINDIR, else
// /usr/lib/postgresql/15/bin.
std::string PostgresBinDir();
// PostgresBinDir()/name
std::string PostgresBin(const std::string& name);

struct PostgresOptions {
  std::string pgdata;
  int port = 0;
  // Directory for the Unix socket (must be writable by `postgres`).
  std::string socket_dir;
  std::string log_file;
  // Extra settings, passed as `-c name=value` (they override postgresql.conf).
  std::map<std::string, std::string> settings;
};

// Runs SQL with psql (-X -A -t -q, ON_ERROR_STOP) against `connection_string` and
// returns its output without the trailing newline. An SQL error is an INTERNAL status
// with psql's message.
absl::StatusOr<std::string> RunSql(const std::string& connection_string, const std::string& sql);

// Writes pg_hba.conf and pg_ident.conf of `pgdata` as Cambium's endpoints have them:
// the socket with peer authentication (OS users root and postgres as postgres),
// SCRAM over TCP. No `trust`.
absl::Status WritePeerAccess(const std::string& pgdata);

class PostgresProcess {
 public:
  explicit PostgresProcess(PostgresOptions options) : options_(std::move(options)) {}
  ~PostgresProcess();

  // Starts postgres and waits until it accepts connections. Should the port be
  // taken meanwhile (another test's), starts again on another free port: port()
  // and connection_string() are the ones in use once it returns.
  absl::Status Start();
  // Fast shutdown (a shutdown checkpoint); an error if it does not exit cleanly.
  absl::Status Stop();
  // SIGKILL to the whole process group: what an OS crash looks like to the data.
  absl::Status Crash();
  bool running() const { return server_ != nullptr; }
  pid_t pid() const { return server_ ? server_->pid() : -1; }

  int port() const { return options_.port; }
  const std::string& socket_dir() const { return options_.socket_dir; }
  const std::string& log_file() const { return options_.log_file; }
  // The superuser through the socket: postgresql://postgres@/DB?host=SOCKET_DIR&port=P.
  std::string connection_string(const std::string& db = "postgres") const;
  std::string LogTail(size_t bytes = 3000) const;

  // RunSql on database `db` of this server.
  absl::StatusOr<std::string> Sql(const std::string& sql, const std::string& db = "postgres") const;
  absl::StatusOr<std::string> Pgbench(const std::vector<std::string>& args,
                                      const std::string& db = "postgres") const;

 private:
  absl::Status StartOnce();
  absl::Status WaitUntilReady();

  PostgresOptions options_;
  std::unique_ptr<Subprocess> server_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_POSTGRES_PROCESS_H_
