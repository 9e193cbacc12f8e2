// Test harness for the safekeeper: valid Postgres WAL and the way Postgres writes
// it, safekeepers in the test process, real cambium-safekeeper processes, and the
// proposer and reader steps the tests share.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_
#define CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "safekeeper/file_system.h"
#include "safekeeper/safekeeper_service.h"
#include "safekeeper/wal_proposer.h"
#include "tests/harness/service_process.h"

namespace cambium::safekeeper::testing {

// `count` valid PostgreSQL 15 WAL records of varied sizes (some spanning pages)
// from `start` (a page boundary), built with WalBuilder for `segment_size`.
struct TestWal {
  Lsn start;
  std::string bytes;
  std::vector<Lsn> record_ends;
  Lsn end() const { return start + bytes.size(); }
};
TestWal MakeTestWal(Lsn start, int count, uint64_t seed,
                    uint64_t segment_size = kDefaultWalSegmentSize);

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
// The same for tests that compare the bytes: on failure records a (non-fatal)
// gtest failure naming the error and returns "".
std::string ExpectCommittedWal(const std::string& address, TenantId tenant, TimelineId timeline,
                               Lsn from, Lsn to);

// Options of a proposer for `timeline` over `safekeepers`, with a deadline per
// call (rpc_timeout) that suits loaded test machines.
ProposerOptions TestProposerOptions(std::vector<std::string> safekeepers, TenantId tenant,
                                    TimelineId timeline, Lsn timeline_start,
                                    const std::string& name = "proposer");

// Appends one write and waits until a quorum flushed it; the error says which
// write failed.
absl::Status AppendAndWait(WalProposer& proposer, const WalWrite& write,
                           absl::Duration timeout = absl::Seconds(20));
// Appends one write that the safekeepers are expected to refuse (a full disk,
// backpressure) and waits up to `timeout` until WaitForFlush says so with
// RESOURCE_EXHAUSTED; returns WaitForFlush's last answer.
absl::Status AppendRefused(WalProposer& proposer, const WalWrite& write,
                           absl::Duration timeout = absl::Seconds(20));

// A Safekeeper with its gRPC server inside the test process, started and stopped
// as cambium-safekeeper does (SafekeeperServer).
class LocalSafekeeper {
 public:
  static absl::StatusOr<std::unique_ptr<LocalSafekeeper>> Start(
      const std::string& data_dir, const std::string& id, FileSystem* fs = nullptr,
      uint64_t segment_size = kDefaultWalSegmentSize,
      uint64_t max_unarchived_wal = SafekeeperOptions{}.max_unarchived_wal);
  ~LocalSafekeeper() { Stop(); }
  const std::string& address() const { return address_; }
  // As on SIGTERM.
  void Stop();

 private:
  std::string address_;
  std::unique_ptr<SafekeeperServer> server_;
};

// A real cambium-safekeeper process on a free port, logging to `log_file`
// (default: SafekeeperLogFile(data_dir)) and checkpointing every 200 ms;
// ServiceProcess restarts, stops and kills it.
absl::StatusOr<std::unique_ptr<cambium::testing::ServiceProcess>> StartSafekeeperProcess(
    const std::string& data_dir, const std::string& id, const std::string& log_file = "",
    const std::vector<std::string>& extra_args = {});
// The log of the process StartSafekeeperProcess started on `data_dir`.
std::string SafekeeperLogFile(const std::string& data_dir);

// Path of the cambium-safekeeper binary built with the tests.
std::string SafekeeperBinary();

}  // namespace cambium::safekeeper::testing

#endif  // CAMBIUM_TESTS_SAFEKEEPER_SK_HARNESS_H_
