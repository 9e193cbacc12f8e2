#include "tests/safekeeper/sk_harness.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_format.h"
#include "common/pg/wal_format.h"
#include "common/service.h"
#include "common/status.h"
#include "grpcpp/server_builder.h"
#include "safekeeper/safekeeper_client.h"
#include "tests/harness/net.h"
#include "tests/harness/wal_builder.h"

namespace cambium::safekeeper::testing {

using ::cambium::testing::FreePort;
using ::cambium::testing::WaitForPort;
using ::cambium::testing::WalBuilder;

TestWal MakeTestWal(Lsn start, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  WalBuilder builder(start);
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

absl::StatusOr<std::unique_ptr<LocalSafekeeper>> LocalSafekeeper::Start(const std::string& data_dir,
                                                                        const std::string& id,
                                                                        FileSystem* fs) {
  auto local = std::make_unique<LocalSafekeeper>();
  SafekeeperOptions options;
  options.data_dir = data_dir;
  options.id = id;
  options.fs = fs;
  options.checkpoint_interval = absl::Milliseconds(100);
  CAMBIUM_ASSIGN_OR_RETURN(local->sk_, Safekeeper::Open(options));
  local->service_ = std::make_unique<SafekeeperServiceImpl>(local->sk_.get());
  grpc::ServerBuilder builder;
  int port = 0;
  CAMBIUM_RETURN_IF_ERROR(ConfigureServer(builder, "127.0.0.1:0", &port));
  builder.RegisterService(local->service_.get());
  local->server_ = builder.BuildAndStart();
  if (local->server_ == nullptr || port == 0) return absl::UnavailableError("cannot listen");
  local->address_ = absl::StrFormat("127.0.0.1:%d", port);
  local->sk_->StartMaintenance();
  return local;
}

void LocalSafekeeper::Stop() {
  if (server_ == nullptr) return;
  sk_->StopReaders();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  server_.reset();
  sk_->Shutdown();
}

std::string SafekeeperBinary() { return CAMBIUM_SAFEKEEPER_BINARY; }

absl::StatusOr<std::unique_ptr<SafekeeperProcess>> SafekeeperProcess::Start(
    const std::string& data_dir, const std::string& id) {
  auto p = std::make_unique<SafekeeperProcess>();
  p->data_dir_ = data_dir;
  p->id_ = id;
  CAMBIUM_ASSIGN_OR_RETURN(p->port_, FreePort());
  p->address_ = absl::StrFormat("127.0.0.1:%d", p->port_);
  p->log_file_ = data_dir + ".log";
  CAMBIUM_RETURN_IF_ERROR(p->Restart());
  return p;
}

absl::Status SafekeeperProcess::Restart() {
  SubprocessOptions options;
  options.argv = {
      SafekeeperBinary(),      "--listen", address_, "--data-dir", data_dir_, "--id", id_,
      "--checkpoint-interval", "200ms"};
  options.stderr_file = log_file_;
  options.die_with_parent = true;
  CAMBIUM_ASSIGN_OR_RETURN(process_, Subprocess::Start(options));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (;;) {
    absl::Status ready = WaitForPort(port_, absl::Milliseconds(100));
    if (ready.ok()) return ready;
    if (!process_->running()) {
      process_.reset();
      return absl::InternalError(absl::StrFormat("%s exited at startup; see %s", id_, log_file_));
    }
    if (absl::Now() > deadline) return ready;
  }
}

void SafekeeperProcess::Kill() {
  if (process_ != nullptr) process_->Stop(9, absl::Seconds(5)).IgnoreError();
  process_.reset();
}

absl::StatusOr<int> SafekeeperProcess::Terminate() {
  if (process_ == nullptr) return absl::FailedPreconditionError("not running");
  absl::StatusOr<int> code = process_->Stop(15, absl::Seconds(20));
  process_.reset();
  return code;
}

}  // namespace cambium::safekeeper::testing
