// Test harness for the safekeeper: valid Postgres WAL and the way Postgres writes
// it, safekeepers in the test process, and real cambium-safekeeper processes.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_
#define CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/lsn.h"
#include "common/subprocess.h"
#include "grpcpp/server.h"
#include "safekeeper/safekeeper.h"
#include "safekeeper/safekeeper_service.h"

namespace cambium::safekeeper::testing {

// `count` valid PostgreSQL 15 WAL records of varied sizes (some spanning pages)
// from `start` (a page boundary), built with WalBuilder.
struct TestWal {
  Lsn start;
  std::string bytes;
  std::vector<Lsn> record_ends;
  Lsn end() const { return start + bytes.size(); }
};
TestWal MakeTestWal(Lsn start, int count, uint64_t seed);

// One pg_wal write as Postgres issues it: whole 8 KiB pages, the last one
// zero-padded after the flush point and rewritten by the next write.
struct WalWrite {
  Lsn lsn;
  std::string bytes;
  Lsn end() const { return lsn + bytes.size(); }
};
// The writes that flush `wal` (which starts at `start`) up to each flush point in
// turn. REQUIRES: flush points increase and lie within the WAL.
std::vector<WalWrite> PostgresLikeWrites(Lsn start, std::string_view wal,
                                         const std::vector<Lsn>& flush_points);

// Waits (up to `timeout`) until the safekeeper at `address` serves committed WAL
// up to `to` (proposers announce commit LSNs a little after acknowledgements),
// then reads [from, to).
absl::StatusOr<std::string> ReadCommittedWal(const std::string& address, TenantId tenant,
                                             TimelineId timeline, Lsn from, Lsn to,
                                             absl::Duration timeout = absl::Seconds(10));

// A Safekeeper with its gRPC server inside the test process.
class LocalSafekeeper {
 public:
  static absl::StatusOr<std::unique_ptr<LocalSafekeeper>> Start(const std::string& data_dir,
                                                                const std::string& id,
                                                                FileSystem* fs = nullptr);
  ~LocalSafekeeper() { Stop(); }
  const std::string& address() const { return address_; }
  Safekeeper* safekeeper() { return sk_.get(); }
  // As on SIGTERM.
  void Stop();

 private:
  std::string address_;
  std::unique_ptr<Safekeeper> sk_;
  std::unique_ptr<SafekeeperServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
};

// A real cambium-safekeeper process on a fixed port, restartable.
class SafekeeperProcess {
 public:
  static absl::StatusOr<std::unique_ptr<SafekeeperProcess>> Start(const std::string& data_dir,
                                                                  const std::string& id);
  // Starts it again (same port, same data directory) after Kill/Terminate.
  absl::Status Restart();
  // SIGKILL, then reaps it: nothing gets to flush.
  void Kill();
  // SIGTERM; returns the exit code.
  absl::StatusOr<int> Terminate();
  const std::string& address() const { return address_; }
  const std::string& log_file() const { return log_file_; }

 private:
  std::string data_dir_;
  std::string id_;
  int port_ = 0;
  std::string address_;
  std::string log_file_;
  std::unique_ptr<Subprocess> process_;
};

// Path of the cambium-safekeeper binary built with the tests.
std::string SafekeeperBinary();

}  // namespace cambium::safekeeper::testing

#endif  // CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_
