// PgCluster: a temporary PostgreSQL 15 cluster for tests.
//
// Create() runs the installed initdb into a fresh temporary directory and starts
// `postgres` (PostgresProcess) on a free 127.0.0.1 port. The destructor always stops
// the server and removes the directory, also when the test failed.
//
// Thread-safety: as PostgresProcess.
#ifndef CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_
#define CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/harness/postgres_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium::testing {

struct PgClusterOptions {
  // Lines appended to postgresql.conf as name = 'value'.
  std::map<std::string, std::string> settings;
  // Start the server after initdb. Default: true.
  bool start = true;
};

class PgCluster {
 public:
  static absl::StatusOr<std::unique_ptr<PgCluster>> Create(PgClusterOptions options = {});
  ~PgCluster() = default;

  absl::Status Start() { return server_->Start(); }
  absl::Status Stop() { return server_->Stop(); }
  bool running() const { return server_->running(); }

  const std::string& pgdata() const { return pgdata_; }
  std::string wal_dir() const { return pgdata_ + "/pg_wal"; }
  int port() const { return server_->port(); }
  const std::string& log_file() const { return server_->log_file(); }
  absl::StatusOr<std::string> Sql(const std::string& sql,
                                  const std::string& db = "postgres") const {
    return server_->Sql(sql, db);
  }
  absl::StatusOr<std::string> Pgbench(const std::vector<std::string>& args,
                                      const std::string& db = "postgres") const {
    return server_->Pgbench(args, db);
  }

 private:
  explicit PgCluster(TempDir dir) : dir_(std::move(dir)) {}

  TempDir dir_;  // destroyed last: the server stops before its directory goes
  std::string pgdata_;
  std::unique_ptr<PostgresProcess> server_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_PG_CLUSTER_H_
