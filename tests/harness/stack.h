// TestStack: a whole Cambium installation for integration tests: the real
// cambium-pageserver and N cambium-safekeeper processes on loopback, a tenant whose
// branch "main" is imported from a fresh initdb, and endpoints: a real cambium-shim
// mounting a branch's PGDATA and a real `postgres` running on it.
//
// Everything is stopped and removed when the stack goes, also when a test fails.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_STACK_H_
#define CAMBIUM_TESTS_HARNESS_STACK_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "common/lsn.h"
#include "common/subprocess.h"
#include "tests/harness/postgres_process.h"
#include "tests/harness/service_process.h"
#include "tests/harness/temp_dir.h"

namespace cambium::testing {

struct StackOptions {
  int safekeepers = 3;
  std::string tenant = "acme";
  // Extra flags of the pageserver (e.g. {"--writer-lease", "3s"}).
  std::vector<std::string> pageserver_args;
  // Give the pageserver and every safekeeper --http-listen on a free port
  // (/metrics, /healthz, /readyz). Default: none.
  bool http = false;
};

struct EndpointOptions {
  // Start even if the timeline's previous writer looks alive (it crashed).
  bool takeover = false;
  // Postgres settings (`-c name=value`).
  std::map<std::string, std::string> settings;
  // Local page cache of the shim, MiB.
  uint64_t cache_mb = 128;
  // Give the shim --http-listen on a free port. Default: none.
  bool http = false;
};

class Endpoint {
 public:
  ~Endpoint();

  PostgresProcess& pg() { return *pg_; }
  const std::string& branch() const { return branch_; }
  const std::string& mountpoint() const { return mountpoint_; }
  Lsn start_lsn() const { return start_lsn_; }
  // The shim's HTTP address (EndpointOptions::http), or "".
  const std::string& http_address() const { return http_address_; }
  std::string ShimLogTail(size_t bytes = 3000) const;

  // A clean stop: Postgres fast shutdown, then the shim (barrier, detach, unmount).
  absl::Status Stop();
  // kill -9 of Postgres (the shim stays).
  absl::Status CrashPostgres();
  // kill -9 of the shim (Postgres then fails on its next I/O and is killed too).
  absl::Status KillShim();
  // After a crash: clean the stale mount, start the shim (taking over) and Postgres.
  absl::Status Restart();

 private:
  friend class TestStack;
  Endpoint() = default;
  absl::Status StartShim(bool takeover);
  // Lazily unmounts the mountpoint (a no-op if nothing is mounted there).
  void Unmount();

  std::string branch_;
  std::string shim_binary_;
  std::vector<std::string> shim_args_;
  std::string dir_;
  std::string mountpoint_;
  std::string scratch_;
  Lsn start_lsn_;
  std::string http_address_;
  EndpointOptions options_;
  std::unique_ptr<Subprocess> shim_;
  std::unique_ptr<PostgresProcess> pg_;
};

class TestStack {
 public:
  static absl::StatusOr<std::unique_ptr<TestStack>> Create(StackOptions options = {});
  ~TestStack();

  v1::ManagementService::Stub& mgmt() { return *mgmt_; }
  const std::string& tenant() const { return options_.tenant; }
  ServiceProcess& pageserver() { return *pageserver_; }
  ServiceProcess& safekeeper(int i) { return *safekeepers_[i]; }
  int safekeeper_count() const { return static_cast<int>(safekeepers_.size()); }
  std::string safekeeper_addresses() const;
  // HTTP addresses (StackOptions::http), or "".
  const std::string& pageserver_http() const { return pageserver_http_; }
  const std::string& safekeeper_http(int i) const { return safekeeper_http_[i]; }

  absl::StatusOr<v1::BranchInfo> GetBranch(const std::string& name);
  absl::StatusOr<v1::BranchInfo> CreateBranch(const std::string& name, const std::string& parent,
                                              std::optional<Lsn> lsn = std::nullopt,
                                              std::optional<absl::Time> at = std::nullopt);
  absl::StatusOr<std::unique_ptr<Endpoint>> StartEndpoint(const std::string& branch,
                                                          EndpointOptions options = {});
  // Waits until the pageserver has archived WAL up to `lsn` on `branch`.
  absl::Status WaitForArchive(const std::string& branch, Lsn lsn, absl::Duration timeout);

 private:
  TestStack() = default;

  StackOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<ServiceProcess> pageserver_;
  std::vector<std::unique_ptr<ServiceProcess>> safekeepers_;
  std::string pageserver_http_;
  std::vector<std::string> safekeeper_http_;
  std::unique_ptr<v1::ManagementService::Stub> mgmt_;
  int endpoints_ = 0;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_STACK_H_
