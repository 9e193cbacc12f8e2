// PgCluster: a temporary PostgreSQL 15 cluster for tests.
//
// Create() runs the installed initdb into a fresh temporary directory, configures
// the cluster to listen on 127.0.0.1 on a free port, and starts `postgres` as the
// `postgres` user (tests run as root in CI; Postgres refuses root). The destructor
// always stops the server (fast, then immediate, then SIGKILL) and removes the
// directory, also when the test failed. SQL runs through psql, load through
// pgbench; both are the installed binaries.
//
// Thread-safety: Sql/Pgbench may be called from several threads; Start/Stop/Crash
// from one.
#ifndef CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_
#define CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/subprocess.h"
#include "tests/harness/temp_dir.h"

namespace cambium::testing {

// Directory of the PostgreSQL 15 binaries: $CAMBIUM_PG_BINDIR, else
// /usr/lib/postgresql/15/bin.
std::string PostgresBinDir();
// PostgresBinDir()/name
std::string PostgresBin(const std::string& name);

struct PgClusterOptions {
  // Extra initdb arguments. Default: none (initdb -N, trust auth, UTF8).
  std::vector<std::string> initdb_args;
  // Lines appended to postgresql.conf as name = 'value'.
  std::map<std::string, std::string> settings;
  // Start the server after initdb. Default: true.
  bool start = true;
};

class PgCluster {
 public:
  static absl::StatusOr<std::unique_ptr<PgCluster>> Create(PgClusterOptions options = {});
  ~PgCluster();

  absl::Status Start();
  // Fast shutdown (a clean shutdown checkpoint).
  absl::Status Stop();
  // SIGKILL to the whole process group: what an OS crash looks like to the data.
  absl::Status Crash();
  bool running() const { return server_ != nullptr; }

  const std::string& pgdata() const { return pgdata_; }
  std::string wal_dir() const { return pgdata_ + "/pg_wal"; }
  int port() const { return port_; }
  std::string connection_string(const std::string& db = "postgres") const;
  const std::string& log_file() const { return log_file_; }

  // Runs SQL with psql (-X -A -t -q, ON_ERROR_STOP) and returns its output with the
  // trailing newline removed. An SQL error is an INTERNAL status with psql's message.
  absl::StatusOr<std::string> Sql(const std::string& sql, const std::string& db = "postgres") const;
  // Runs pgbench with `args` against this cluster; returns its output.
  absl::StatusOr<std::string> Pgbench(const std::vector<std::string>& args,
                                      const std::string& db = "postgres") const;

 private:
  PgCluster(TempDir dir, int port) : dir_(std::move(dir)), port_(port) {}
  absl::Status WaitUntilReady();

  TempDir dir_;
  std::string pgdata_;
  std::string log_file_;
  int port_;
  std::unique_ptr<Subprocess> server_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_
