// Safekeeper benchmarks (issue 4). Run: build-sk/safekeeper/safekeeper_bench
//
//  - LocalFdatasync8k/awake:A: pwrite 8 KiB + fdatasync to a preallocated file in
//    $TMPDIR: the physical floor of a durable WAL write on this disk. On this VM
//    a thread sleeping in fdatasync on an otherwise idle machine is woken up to a
//    timer tick (4 ms) late; awake:1 keeps a spinning thread running so that the
//    number is the disk's, not the idle CPU's (the safekeepers, with gRPC and
//    three processes, run in that regime).
//  - LocalUring8k/awake:A: the same write + fdatasync as one linked io_uring
//    submission, to decide whether liburing is worth using on the commit path.
//  - QuorumAppend8k: WalProposer::Append of 8 KiB + WaitForFlush, against three
//    real cambium-safekeeper processes on loopback whose data directories are in
//    $TMPDIR too: the commit latency a compute sees. Reports p50/p99 and the
//    ratio of its p50 to LocalFdatasync8k's.
//  - QuorumAppendAuth8k: QuorumAppend8k against three in-process safekeeper
//    servers, with and without authentication (service token, authenticator),
//    two clusters in one run, commits alternating between them: the cost of
//    authentication on commit latency.
//  - GrpcRoundTrip: a unary Status call to one safekeeper (no fsync): the RPC
//    share of the commit latency.
//  - QuorumThroughput/N: appends of N bytes without waiting, a WaitForFlush every
//    1 MiB (pipelined, coalesced): MB/s a bulk load can push.
//  - VerifyWal/record:N: decoding 64 MiB of WAL in records of N bytes with every
//    CRC checked, in process: what a verified ReadWal adds per byte served.
//  - ReadCommittedWal/record:N: 64 MiB of committed WAL read back through
//    ReadWal from one safekeeper process (the pageserver archive's path).
// The WAL is valid PostgreSQL 15 WAL (WalBuilder), so the safekeepers' record
// decoding (commit LSNs, checkpoints) does its real work.
#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/authenticator.h"
#include "auth/token.h"
#include "benchmark/benchmark.h"
#include "common/pg/wal_decoder.h"
#include "common/service.h"
#include "common/status.h"
#include "safekeeper/safekeeper_client.h"
#include "safekeeper/safekeeper_service.h"
#include "safekeeper/wal_proposer.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"
#include "tests/safekeeper/sk_harness.h"

namespace cambium::safekeeper::bench {
namespace {

using ::cambium::testing::TempDir;
using ::cambium::testing::WalBuilder;
using Clock = std::chrono::steady_clock;

constexpr size_t kPage = 8192;
constexpr size_t kFileSize = 64 << 20;

double local_p50_us = 0;       // awake floor
double local_idle_p50_us = 0;  // idle machine

// Keeps a CPU busy while alive (see the header comment), if `on`.
class Spinner {
 public:
  explicit Spinner(bool on) {
    if (on)
      thread_ = std::thread([this] {
        while (!stop_.load(std::memory_order_relaxed)) {
        }
      });
  }
  ~Spinner() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct Latencies {
  std::vector<double> us;
  void Add(Clock::time_point start) {
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  double Percentile(double p) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  }
  void Report(benchmark::State& state) {
    state.counters["p50_us"] = Percentile(0.50);
    state.counters["p99_us"] = Percentile(0.99);
  }
};

// A zero-filled, synced file to overwrite (as WAL segments are).
int PreallocatedFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  const std::string zeros(1 << 20, '\0');
  for (size_t off = 0; off < kFileSize; off += zeros.size()) {
    if (pwrite(fd, zeros.data(), zeros.size(), off) < 0) return -1;
  }
  fsync(fd);
  return fd;
}

void BM_LocalFdatasync8k(benchmark::State& state) {
  auto dir = TempDir::Create("cambium-sk-bench-");
  const int fd = PreallocatedFile(dir->Sub("file"));
  Spinner spinner(state.range(0) != 0);
  const std::string page(kPage, 'w');
  Latencies lat;
  size_t off = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    if (pwrite(fd, page.data(), page.size(), off) != static_cast<ssize_t>(page.size()) ||
        fdatasync(fd) != 0) {
      state.SkipWithError("pwrite/fdatasync failed");
      break;
    }
    lat.Add(start);
    off = (off + kPage) % kFileSize;
  }
  close(fd);
  state.SetBytesProcessed(state.iterations() * kPage);
  (state.range(0) ? local_p50_us : local_idle_p50_us) = lat.Percentile(0.5);
  lat.Report(state);
}
BENCHMARK(BM_LocalFdatasync8k)->ArgName("awake")->Arg(0)->Arg(1)->Iterations(2000)->UseRealTime();

void BM_LocalUring8k(benchmark::State& state) {
  auto dir = TempDir::Create("cambium-sk-bench-");
  const int fd = PreallocatedFile(dir->Sub("file"));
  Spinner spinner(state.range(0) != 0);
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) {
    state.SkipWithError("io_uring_queue_init failed");
    return;
  }
  const std::string page(kPage, 'u');
  Latencies lat;
  size_t off = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    io_uring_sqe* write = io_uring_get_sqe(&ring);
    io_uring_prep_write(write, fd, page.data(), page.size(), off);
    write->flags |= IOSQE_IO_LINK;  // the sync starts once the write completed
    io_uring_sqe* sync = io_uring_get_sqe(&ring);
    io_uring_prep_fsync(sync, fd, IORING_FSYNC_DATASYNC);
    io_uring_submit_and_wait(&ring, 2);
    for (int i = 0; i < 2; ++i) {
      io_uring_cqe* cqe;
      io_uring_wait_cqe(&ring, &cqe);
      if (cqe->res < 0) state.SkipWithError("io_uring write/fsync failed");
      io_uring_cqe_seen(&ring, cqe);
    }
    lat.Add(start);
    off = (off + kPage) % kFileSize;
  }
  io_uring_queue_exit(&ring);
  close(fd);
  state.SetBytesProcessed(state.iterations() * kPage);
  lat.Report(state);
  const double floor = state.range(0) ? local_p50_us : local_idle_p50_us;
  state.counters["vs_fdatasync"] = floor > 0 ? lat.Percentile(0.5) / floor : 0;
}
BENCHMARK(BM_LocalUring8k)->ArgName("awake")->Arg(0)->Arg(1)->Iterations(2000)->UseRealTime();

// Three safekeeper processes and an elected proposer on a fresh timeline.
struct Cluster {
  std::unique_ptr<TempDir> dir;
  std::vector<std::unique_ptr<::cambium::testing::ServiceProcess>> sks;
  std::unique_ptr<WalProposer> proposer;
  Lsn start;

  static std::unique_ptr<Cluster> Start(benchmark::State& state, uint64_t timeline) {
    auto c = std::make_unique<Cluster>();
    c->dir = std::make_unique<TempDir>(std::move(*TempDir::Create("cambium-sk-bench-")));
    ProposerOptions options;
    for (int i = 0; i < 3; ++i) {
      auto sk = testing::StartSafekeeperProcess(c->dir->Sub("sk" + std::to_string(i)),
                                                "sk" + std::to_string(i));
      if (!sk.ok()) {
        state.SkipWithError(std::string(sk.status().message()).c_str());
        return nullptr;
      }
      options.safekeepers.push_back((*sk)->address());
      c->sks.push_back(std::move(*sk));
    }
    options.tenant = TenantId(7, 7);
    options.timeline = TimelineId(timeline, timeline);
    options.timeline_start = Lsn(0x1000000);
    auto proposer = WalProposer::Create(options);
    auto start = proposer.ok() ? (*proposer)->Elect() : proposer.status();
    if (!start.ok()) {
      state.SkipWithError(std::string(start.status().message()).c_str());
      return nullptr;
    }
    c->proposer = std::move(*proposer);
    c->start = *start;
    return c;
  }
};

// `bytes` of valid WAL from `start`, in records of about 8 KiB.
std::string MakeWal(Lsn start, size_t bytes) {
  WalBuilder builder(start);
  while (builder.bytes().size() < bytes) builder.AddWithTotalLen(8000);
  return builder.bytes().substr(0, bytes);
}

void BM_QuorumAppend8k(benchmark::State& state) {
  auto cluster = Cluster::Start(state, 1);
  if (cluster == nullptr) return;
  const std::string wal = MakeWal(cluster->start, (state.max_iterations + 1) * kPage);
  Latencies lat;
  Lsn lsn = cluster->start;
  for (auto _ : state) {
    const auto start = Clock::now();
    const std::string_view page(wal.data() + (lsn - cluster->start), kPage);
    absl::Status s = cluster->proposer->Append(lsn, page);
    if (s.ok()) s = cluster->proposer->WaitForFlush(lsn + kPage, absl::Seconds(10));
    if (!s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      break;
    }
    lat.Add(start);
    lsn += kPage;
  }
  state.SetBytesProcessed(state.iterations() * kPage);
  lat.Report(state);
  // Ratios of p50s: to the disk's floor, and to what a lone writer sees here.
  state.counters["vs_fdatasync_awake"] = local_p50_us > 0 ? lat.Percentile(0.5) / local_p50_us : 0;
  state.counters["vs_fdatasync_idle"] =
      local_idle_p50_us > 0 ? lat.Percentile(0.5) / local_idle_p50_us : 0;
}
BENCHMARK(BM_QuorumAppend8k)->Iterations(3000)->UseRealTime();

// Three in-process safekeeper servers and an elected proposer, made under the
// process security in force when Start runs (channels and servers keep theirs).
struct InProcessCluster {
  std::unique_ptr<TempDir> dir;
  std::vector<std::unique_ptr<SafekeeperServer>> sks;
  std::unique_ptr<WalProposer> proposer;
  Lsn start;

  static absl::StatusOr<std::unique_ptr<InProcessCluster>> Start(uint64_t timeline) {
    auto c = std::make_unique<InProcessCluster>();
    CAMBIUM_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("cambium-sk-auth-bench-"));
    c->dir = std::make_unique<TempDir>(std::move(dir));
    ProposerOptions options;
    for (int i = 0; i < 3; ++i) {
      SafekeeperOptions sk;
      sk.data_dir = c->dir->Sub("sk" + std::to_string(i));
      sk.id = "sk" + std::to_string(i);
      CAMBIUM_ASSIGN_OR_RETURN(auto server, SafekeeperServer::Start(sk, "127.0.0.1:0"));
      options.safekeepers.push_back("127.0.0.1:" + std::to_string(server->port()));
      c->sks.push_back(std::move(server));
    }
    options.tenant = TenantId(9, 9);
    options.timeline = TimelineId(timeline, timeline);
    options.timeline_start = Lsn(0x1000000);
    CAMBIUM_ASSIGN_OR_RETURN(c->proposer, WalProposer::Create(options));
    CAMBIUM_ASSIGN_OR_RETURN(c->start, c->proposer->Elect());
    return c;
  }
};

absl::StatusOr<std::unique_ptr<InProcessCluster>> StartAuthCluster() {
  const ProcessSecurity saved = GetProcessSecurity();
  ProcessSecurity security = saved;
  CAMBIUM_ASSIGN_OR_RETURN(security.client_token, auth::MakeToken(auth::kServiceId));
  CAMBIUM_ASSIGN_OR_RETURN(security.processor,
                           auth::Authenticator::Create({.service_token = security.client_token}));
  SetProcessSecurity(security);
  auto cluster = InProcessCluster::Start(12);
  SetProcessSecurity(saved);
  return cluster;
}

void BM_QuorumAppendAuth8k(benchmark::State& state) {
  const ProcessSecurity saved = GetProcessSecurity();
  SetProcessSecurity(ProcessSecurity());
  auto plain = InProcessCluster::Start(11);
  SetProcessSecurity(saved);
  auto authed = plain.ok() ? StartAuthCluster() : plain.status();
  if (!authed.ok()) {
    state.SkipWithError(std::string(authed.status().message()).c_str());
    return;
  }
  InProcessCluster* clusters[2] = {plain->get(), authed->get()};
  const std::string wal[2] = {MakeWal(clusters[0]->start, (state.max_iterations + 1) * kPage),
                              MakeWal(clusters[1]->start, (state.max_iterations + 1) * kPage)};
  Latencies lat[2];
  Lsn lsn[2] = {clusters[0]->start, clusters[1]->start};
  for (auto _ : state) {
    for (int k = 0; k < 2; ++k) {  // alternate: drift affects both alike
      InProcessCluster* c = clusters[k];
      const auto start = Clock::now();
      const std::string_view page(wal[k].data() + (lsn[k] - c->start), kPage);
      absl::Status s = c->proposer->Append(lsn[k], page);
      if (s.ok()) s = c->proposer->WaitForFlush(lsn[k] + kPage, absl::Seconds(10));
      if (!s.ok()) {
        state.SkipWithError(std::string(s.message()).c_str());
        return;
      }
      lat[k].Add(start);
      lsn[k] += kPage;
    }
  }
  const double p50[2] = {lat[0].Percentile(0.5), lat[1].Percentile(0.5)};
  state.counters["commit_p50_us_noauth"] = p50[0];
  state.counters["commit_p50_us_auth"] = p50[1];
  state.counters["commit_p99_us_noauth"] = lat[0].Percentile(0.99);
  state.counters["commit_p99_us_auth"] = lat[1].Percentile(0.99);
  state.counters["ratio_p50"] = p50[0] > 0 ? p50[1] / p50[0] : 0;
}
BENCHMARK(BM_QuorumAppendAuth8k)->Iterations(2000)->UseRealTime();

// A unary Status call to one safekeeper: the cost of a gRPC round trip here,
// without any fsync (how much of QuorumAppend8k is RPC rather than disk).
void BM_GrpcRoundTrip(benchmark::State& state) {
  auto cluster = Cluster::Start(state, 99);
  if (cluster == nullptr) return;
  SafekeeperClient client(cluster->sks[0]->address());
  Latencies lat;
  for (auto _ : state) {
    const auto start = Clock::now();
    auto status = client.Status(TenantId(7, 7), TimelineId(99, 99));
    if (!status.ok()) {
      state.SkipWithError(std::string(status.status().message()).c_str());
      break;
    }
    lat.Add(start);
  }
  lat.Report(state);
}
BENCHMARK(BM_GrpcRoundTrip)->Iterations(3000)->UseRealTime();

void BM_QuorumThroughput(benchmark::State& state) {
  const size_t chunk = state.range(0);
  constexpr size_t kTotal = 256 << 20;
  auto cluster = Cluster::Start(state, 2 + chunk);
  if (cluster == nullptr) return;
  const std::string wal = MakeWal(cluster->start, kTotal);
  for (auto _ : state) {
    Lsn lsn = cluster->start;
    Lsn waited = lsn;
    for (size_t off = 0; off < kTotal; off += chunk) {
      absl::Status s = cluster->proposer->Append(lsn, std::string_view(wal).substr(off, chunk));
      lsn += chunk;
      if (s.ok() && lsn - waited >= (1 << 20)) {
        s = cluster->proposer->WaitForFlush(lsn, absl::Seconds(30));
        waited = lsn;
      }
      if (!s.ok()) {
        state.SkipWithError(std::string(s.message()).c_str());
        return;
      }
    }
    absl::Status s = cluster->proposer->WaitForFlush(lsn, absl::Seconds(30));
    if (!s.ok()) state.SkipWithError(std::string(s.message()).c_str());
  }
  state.SetBytesProcessed(state.iterations() * kTotal);
}
BENCHMARK(BM_QuorumThroughput)
    ->Arg(8192)
    ->Arg(64 << 10)
    ->Arg(1 << 20)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// What VerifiedWalReader adds per byte served: decoding and the CRC of every
// record (in process, from memory). Arg: record size in bytes.
void BM_VerifyWal(benchmark::State& state) {
  const uint32_t record = static_cast<uint32_t>(state.range(0));
  WalBuilder builder(Lsn(0x1000000));
  while (builder.bytes().size() < (64 << 20)) builder.AddWithTotalLen(record);
  const std::string& wal = builder.bytes();
  for (auto _ : state) {
    pg::WalDecoder decoder(Lsn(0x1000000));
    for (size_t off = 0; off < wal.size(); off += 1 << 20) {
      decoder.Feed(std::string_view(wal).substr(off, 1 << 20));
      for (;;) {
        auto next = decoder.Next();
        if (!next.ok()) return state.SkipWithError(std::string(next.status().message()).c_str());
        if (!next->has_value()) break;
        benchmark::DoNotOptimize((*next)->end);
      }
    }
  }
  state.SetBytesProcessed(state.iterations() * wal.size());
}
BENCHMARK(BM_VerifyWal)->ArgName("record")->Arg(8000)->Arg(200)->Unit(benchmark::kMillisecond);

// Committed WAL read back through ReadWal (what the pageserver's archive and
// starting computes do): every record's CRC is checked before it is served.
// Arg: record size in bytes (the decoding cost is per byte and per record).
void BM_ReadCommittedWal(benchmark::State& state) {
  const uint32_t record = static_cast<uint32_t>(state.range(0));
  constexpr size_t kTotal = 64 << 20;
  auto cluster = Cluster::Start(state, 200 + record);
  if (cluster == nullptr) return;
  WalBuilder builder(cluster->start);
  while (builder.bytes().size() < kTotal) builder.AddWithTotalLen(record);
  const std::string& wal = builder.bytes();
  const Lsn end = cluster->start + wal.size();
  for (size_t off = 0; off < wal.size(); off += 1 << 20) {
    absl::Status s =
        cluster->proposer->Append(cluster->start + off, std::string_view(wal).substr(off, 1 << 20));
    if (!s.ok()) return state.SkipWithError(std::string(s.message()).c_str());
  }
  absl::Status flushed = cluster->proposer->WaitForFlush(end, absl::Seconds(60));
  if (!flushed.ok()) return state.SkipWithError(std::string(flushed.message()).c_str());
  absl::StatusOr<std::string> read =
      testing::ReadCommittedWal(cluster->sks[0]->address(), TenantId(7, 7),
                                TimelineId(200 + record, 200 + record), cluster->start, end);
  if (!read.ok()) return state.SkipWithError(std::string(read.status().message()).c_str());
  SafekeeperClient client(cluster->sks[0]->address(), absl::Seconds(60));
  for (auto _ : state) {
    read =
        client.ReadWal(TenantId(7, 7), TimelineId(200 + record, 200 + record), cluster->start, end);
    if (!read.ok() || read->size() != wal.size()) {
      return state.SkipWithError(read.ok() ? "short read"
                                           : std::string(read.status().message()).c_str());
    }
  }
  state.SetBytesProcessed(state.iterations() * wal.size());
}
BENCHMARK(BM_ReadCommittedWal)
    ->ArgName("record")
    ->Arg(8000)
    ->Arg(200)
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cambium::safekeeper::bench

BENCHMARK_MAIN();
