#include "tests/safekeeper/sk_harness.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_format.h"
#include "common/pg/wal_format.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "safekeeper/safekeeper_client.h"
#include "tests/harness/net.h"
#include "tests/harness/wal_builder.h"

namespace cambium::safekeeper::testing {

using ::cambium::testing::FreePort;
using ::cambium::testing::ServiceProcess;
using ::cambium::testing::WalBuilder;

TestWal MakeTestWal(Lsn start, int count, uint64_t seed, uint64_t segment_size) {
  std::mt19937_64 rng(seed);
  WalBuilder builder(start, {.segment_size = segment_size});
  TestWal wal;
  wal.start = start;
  const uint8_t heap = static_cast<uint8_t>(pg::RmgrId::kHeap);
  for (int i = 0; i < count; ++i) {
    const uint64_t kind = rng() % 20;
    if (kind == 0) {
      builder.AddCommit(1000 + i, 700000000000000 + i);
    } else {
      // Mostly small records, some a few pages long.
      const size_t size = kind == 1 ? 8000 + rng() % 20000 : 20 + rng() % 400;
      std::string data(size, static_cast<char>('a' + rng() % 26));
      builder.Add(heap, 0, 1000 + i, data,
                  {{.rel_oid = 16384, .block_no = static_cast<uint32_t>(i), .data = "tuple"}});
    }
    wal.record_ends.push_back(builder.end());
  }
  wal.bytes = builder.bytes();
  return wal;
}

std::vector<WalWrite> PostgresLikeWrites(Lsn start, std::string_view wal,
                                         const std::vector<Lsn>& flush_points) {
  std::vector<WalWrite> writes;
  Lsn written = start;
  for (Lsn flush : flush_points) {
    if (flush <= written) continue;
    const Lsn from = written.PageStart();
    const Lsn to = flush.IsPageBoundary() ? flush : flush.PageStart() + kWalPageSize;
    WalWrite w{from, std::string(wal.substr(from - start, flush - from))};
    w.bytes.resize(to - from, '\0');
    writes.push_back(std::move(w));
    written = flush;
  }
  return writes;
}

absl::StatusOr<std::string> ReadCommittedWal(const std::string& address, TenantId tenant,
                                             TimelineId timeline, Lsn from, Lsn to,
                                             absl::Duration timeout) {
  SafekeeperClient client(address);
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<SafekeeperStatus> status = client.Status(tenant, timeline);
    if (status.ok() && status->committed_lsn >= to) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s does not serve WAL up to %s: %s", address, to.ToString(),
                          status.ok() ? "committed up to " + status->committed_lsn.ToString()
                                      : status.status().ToString()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return client.ReadWal(tenant, timeline, from, to);
}

std::string ExpectCommittedWal(const std::string& address, TenantId tenant, TimelineId timeline,
                               Lsn from, Lsn to) {
  absl::StatusOr<std::string> wal = ReadCommittedWal(address, tenant, timeline, from, to);
  EXPECT_TRUE(wal.ok()) << wal.status();
  return wal.ok() ? *std::move(wal) : "";
}

ProposerOptions TestProposerOptions(std::vector<std::string> safekeepers, TenantId tenant,
                                    TimelineId timeline, Lsn timeline_start,
                                    const std::string& name) {
  ProposerOptions o;
  o.safekeepers = std::move(safekeepers);
  o.tenant = tenant;
  o.timeline = timeline;
  o.name = name;
  o.timeline_start = timeline_start;
  o.rpc_timeout = absl::Seconds(10);
  return o;
}

absl::Status AppendAndWait(WalProposer& proposer, const WalWrite& write, absl::Duration timeout) {
  absl::Status s = proposer.Append(write.lsn, write.bytes);
  if (s.ok()) s = proposer.WaitForFlush(write.end(), timeout);
  if (s.ok()) return s;
  return Annotate(s,
                  absl::StrFormat("write [%s, %s)", write.lsn.ToString(), write.end().ToString()));
}

absl::Status AppendRefused(WalProposer& proposer, const WalWrite& write, absl::Duration timeout) {
  CAMBIUM_RETURN_IF_ERROR(proposer.Append(write.lsn, write.bytes));
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status status;
  do {
    status = proposer.WaitForFlush(write.end(), absl::Milliseconds(200));
  } while (!absl::IsResourceExhausted(status) && absl::Now() < deadline);
  return status;
}

absl::StatusOr<std::unique_ptr<LocalSafekeeper>> LocalSafekeeper::Start(
    const std::string& data_dir, const std::string& id, FileSystem* fs, uint64_t segment_size,
    uint64_t max_unarchived_wal) {
  auto local = std::make_unique<LocalSafekeeper>();
  SafekeeperOptions options;
  options.data_dir = data_dir;
  options.id = id;
  options.fs = fs;
  options.segment_size = segment_size;
  options.max_unarchived_wal = max_unarchived_wal;
  options.checkpoint_interval = absl::Milliseconds(100);
  CAMBIUM_ASSIGN_OR_RETURN(local->server_, SafekeeperServer::Start(options, "127.0.0.1:0"));
  local->address_ = absl::StrFormat("127.0.0.1:%d", local->server_->port());
  return local;
}

void LocalSafekeeper::Stop() {
  if (server_ != nullptr) server_->Stop(absl::Milliseconds(100));
}

std::string SafekeeperBinary() { return CAMBIUM_SAFEKEEPER_BINARY; }

std::string SafekeeperLogFile(const std::string& data_dir) { return data_dir + ".log"; }

absl::StatusOr<std::unique_ptr<ServiceProcess>> StartSafekeeperProcess(
    const std::string& data_dir, const std::string& id, const std::string& log_file,
    const std::vector<std::string>& extra_args) {
  CAMBIUM_ASSIGN_OR_RETURN(const int port, FreePort());
  std::vector<std::string> args = {"--data-dir", data_dir, "--id", id, "--checkpoint-interval",
                                   "200ms"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return ServiceProcess::Start(SafekeeperBinary(), args, port,
                               log_file.empty() ? SafekeeperLogFile(data_dir) : log_file);
}

}  // namespace cambium::safekeeper::testing
