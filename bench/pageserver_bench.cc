// Pageserver benchmarks (issue 3): each measures the pageserver next to a physical
// floor in the same run, on the same disk, and reports the ratio.
//
//   BranchCreate/<layout>:<n>  Repository::CreateBranch latency (p50/p99) on a root
//                              timeline holding n block versions (or n files), vs a
//                              synced 8 KiB append (pwrite + fdatasync).
//   GetPages/depth:<d>/batch:<b>  gRPC GetPages round trip (real server on loopback) of
//                              b pages whose only version is on the root, read from a
//                              branch d levels below it, vs a trivial unary call.
//   PutMutations/<transport>/barrier_every:<k>  MiB/s of 8 KiB block writes, with a
//                              Barrier every k batches (0 = only at the end), vs
//                              sequential write() with fdatasync at the same points.
//   GetPagesAuth               GetPages (1 page, open stream) and a unary call with
//                              and without authentication (service token and
//                              authenticator), two servers, alternating, same run.
//   ManyBranches/<n>           creation rate of n branches in one tenant and GetPage
//                              latency before vs after, listing and restart times.
//
// Every benchmark runs exactly one iteration and takes its own samples; the reported
// time is the median of the measured operation, percentiles and ratios are counters,
// and a plain-text summary is printed at the end. Nothing here asserts on timings.
// Run it by hand (it is not a CTest test); see bench/pageserver_bench.md.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "auth/token.h"
#include "benchmark/benchmark.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "cambium/v1/page_service.grpc.pb.h"
#include "common/logging.h"
#include "common/pg/wal_format.h"
#include "common/pg/wal_records.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "pageserver/pageserver.h"
#include "pageserver/test_util.h"
#include "tests/harness/temp_dir.h"
#include "tests/harness/wal_builder.h"

namespace cambium::pageserver::bench {
namespace {

using ::cambium::pageserver::testing::MCreate;
using ::cambium::pageserver::testing::MMkdir;
using ::cambium::pageserver::testing::MWrite;
using ::cambium::testing::TempDir;
using ::cambium::testing::WalBuilder;
using Clock = std::chrono::steady_clock;
using Mutations = google::protobuf::RepeatedPtrField<v1::Mutation>;

constexpr Lsn kWalStart(0x1000000);
constexpr uint64_t kSegmentBlocks = (1ull << 30) / kBlockSize;  // Postgres' 1 GiB segments
constexpr const char* kRelation = "base/5/16384";
constexpr int kPutBatchBlocks = 32;

// Sizes, overridable with --ps_* flags (parsed before Google Benchmark's own).
struct Options {
  std::vector<int64_t> branch_blocks = {10000, 100000, 300000};
  std::vector<int64_t> branch_files = {10, 1000, 10000};
  int branch_samples = 200;
  int read_samples = 1000;
  int read_depth_max = 100;
  int64_t put_mib = 64;  // per segment; floor and pageserver segments alternate
  int put_rounds = 4;
  int many_branches = 10000;
  // RocksDB tuning under test (production defaults: lz4 + zstd bottommost, no blobs).
  std::string compression = "lz4";
  bool blob_files = false;
};
Options g_options;
std::vector<std::string> g_summary;  // lines printed after the run

double MicrosSince(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// --- Statistics -------------------------------------------------------------------

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
  size_t n = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto at = [&v](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.p50 = at(0.50);
  s.p99 = at(0.99);
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

void SetLatency(benchmark::State& state, const std::string& prefix, const Stats& s) {
  state.counters[prefix + "p50_us"] = s.p50;
  state.counters[prefix + "p99_us"] = s.p99;
}

// --- Page contents ----------------------------------------------------------------

uint64_t SplitMix(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Page `id` looks like a half-full heap page: its number (8 bytes), 4 KiB of random
// bytes unique to it, then zeros: about 2:1 under lz4, and no two pages alike.
void FillPage(std::string* data, uint64_t id) {
  data->assign(kBlockSize, '\0');
  uint64_t seed = id * 0x2545f4914f6cdd1dull + 1;
  for (size_t i = 8; i < kBlockSize / 2; i += 8) {
    const uint64_t r = SplitMix(seed);
    std::memcpy(data->data() + i, &r, 8);
  }
  std::memcpy(data->data(), &id, sizeof(id));
}

// Contents for the floors' writes (the disk does not compress).
const std::string& PageTemplate() {
  static const std::string page = [] {
    std::string p(kBlockSize, '\0');
    uint64_t seed = 42;
    for (size_t i = 0; i < kBlockSize / 2; i += 8) {
      const uint64_t r = SplitMix(seed);
      std::memcpy(p.data() + i, &r, 8);
    }
    return p;
  }();
  return page;
}

std::string SegmentPath(uint64_t block) {
  const uint64_t seg = block / kSegmentBlocks;
  return seg == 0 ? std::string(kRelation) : absl::StrFormat("%s.%d", kRelation, seg);
}

// Appends a full-block write of `block` of the relation (creating its segment file
// when the block is the first of a segment).
void AddRelationBlock(Mutations* out, uint64_t block, Lsn tag) {
  if (block % kSegmentBlocks == 0) *out->Add() = MCreate(SegmentPath(block), tag);
  v1::Mutation* m = out->Add();
  m->set_lsn(tag.value());
  m->set_path(SegmentPath(block));
  v1::BlockWrite* w = m->mutable_write();
  w->set_block_no(static_cast<uint32_t>(block % kSegmentBlocks));
  w->set_offset(0);
  FillPage(w->mutable_data(), block);
}

// --- Physical floors --------------------------------------------------------------

// Two ways to write a file: appending (the file grows, so fdatasync also commits its
// size and block allocation, as for a log) or in place over blocks written and
// synced beforehand (fdatasync flushes data only: the physical minimum).
enum class FloorMode { kAppend, kInPlace };
constexpr uint64_t kInPlaceBytes = 16 << 20;

// Opens a fresh file; for kInPlace, fills `prefill` bytes and syncs them first.
int OpenFloorFile(const std::string& path, FloorMode mode, uint64_t prefill) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  if (fd < 0 || mode == FloorMode::kAppend) return fd;
  const std::string& page = PageTemplate();
  for (uint64_t off = 0; off < prefill; off += kBlockSize) {
    if (::pwrite(fd, page.data(), kBlockSize, static_cast<off_t>(off)) != kBlockSize) break;
  }
  if (::fdatasync(fd) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Synced 8 KiB writes (pwrite + fdatasync): what one durable metadata write costs at
// least.
class SyncedWrite {
 public:
  SyncedWrite(std::string path, FloorMode mode) : path_(std::move(path)), mode_(mode) {
    fd_ = OpenFloorFile(path_, mode, kInPlaceBytes);
  }
  ~SyncedWrite() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return fd_ >= 0; }
  // Microseconds for one pwrite + fdatasync; negative on error.
  double Sample() {
    const auto start = Clock::now();
    if (::pwrite(fd_, PageTemplate().data(), kBlockSize, offset_) != kBlockSize) return -1;
    if (::fdatasync(fd_) != 0) return -1;
    offset_ += kBlockSize;
    if (mode_ == FloorMode::kInPlace && static_cast<uint64_t>(offset_) >= kInPlaceBytes)
      offset_ = 0;
    return MicrosSince(start);
  }

 private:
  std::string path_;
  FloorMode mode_;
  int fd_ = -1;
  off_t offset_ = 0;
};

// Both 8 KiB floors, sampled together.
struct SyncedFloors {
  explicit SyncedFloors(const TempDir& dir)
      : append(dir.Sub("floor-append"), FloorMode::kAppend),
        in_place(dir.Sub("floor-in-place"), FloorMode::kInPlace) {}
  absl::Status Sample() {
    append_us.push_back(append.Sample());
    in_place_us.push_back(in_place.Sample());
    if (!append.ok() || !in_place.ok() || append_us.back() < 0 || in_place_us.back() < 0)
      return absl::InternalError("floor write failed");
    return absl::OkStatus();
  }
  SyncedWrite append, in_place;
  std::vector<double> append_us, in_place_us;
};

// MiB/s of writing `total` bytes in `chunk`-byte pwrites to a new file, with
// fdatasync after every `sync_every` chunks and at the end.
absl::StatusOr<double> SequentialWriteMiBps(const std::string& path, FloorMode mode, uint64_t total,
                                            size_t chunk, int sync_every) {
  std::string buf;
  while (buf.size() < chunk) buf += PageTemplate();
  buf.resize(chunk);
  const int fd = OpenFloorFile(path, mode, total);
  if (fd < 0) return absl::InternalError("open " + path);
  const auto start = Clock::now();
  bool ok = true;
  uint64_t chunks = 0;
  for (uint64_t done = 0; done < total && ok; done += chunk) {
    ok = ::pwrite(fd, buf.data(), chunk, static_cast<off_t>(done)) == static_cast<ssize_t>(chunk);
    ++chunks;
    if (ok && sync_every > 0 && chunks % sync_every == 0) ok = ::fdatasync(fd) == 0;
  }
  if (ok) ok = ::fdatasync(fd) == 0;
  const double secs = MicrosSince(start) / 1e6;
  ::close(fd);
  ::unlink(path.c_str());
  if (!ok) return absl::InternalError("write/fdatasync " + path);
  return static_cast<double>(total) / (1 << 20) / secs;
}

// --- An in-process pageserver with a root timeline --------------------------------

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start() {
    std::unique_ptr<Server> s(new Server());
    CAMBIUM_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("cambium-bench-"));
    s->dir_ = std::make_unique<TempDir>(std::move(dir));
    s->config_.listen = "127.0.0.1:0";
    s->config_.data_dir = s->dir_->Sub("data");
    s->config_.gc_interval = "0";
    s->config_.compression = g_options.compression;
    s->config_.blob_files = g_options.blob_files;
    CAMBIUM_RETURN_IF_ERROR(s->Open());
    CAMBIUM_RETURN_IF_ERROR(s->CreateRoot());
    return s;
  }
  ~Server() { Close(); }

  // Shuts the server down and starts it again on the same data; returns the
  // time PageServer::Start took, in microseconds.
  absl::StatusOr<double> Restart() {
    Close();
    const auto start = Clock::now();
    CAMBIUM_RETURN_IF_ERROR(Open());
    return MicrosSince(start);
  }

  Repository& repo() { return *server_->repository(); }
  PageStore& store() { return *repo().store(); }
  v1::PageService::Stub& pages() { return *pages_; }
  v1::ManagementService::Stub& mgmt() { return *mgmt_; }
  const TempDir& dir() const { return *dir_; }
  const TenantId& tenant() const { return tenant_; }
  // The root timeline "main" (not looked up by name: GetBranch computes sizes, which
  // reads every version the timeline stores) and the end of its archived WAL.
  absl::StatusOr<std::shared_ptr<Timeline>> Main() { return repo().GetTimeline(tenant_, main_id_); }
  absl::StatusOr<std::shared_ptr<Timeline>> Branch(const std::string& name) {
    CAMBIUM_ASSIGN_OR_RETURN(BranchInfo b, repo().GetBranch("bench", name));
    return repo().GetTimeline(tenant_, b.timeline_id);
  }
  Lsn head() const { return head_; }
  // Archives WAL on the root (a logical message and a commit) until its head is past
  // `lsn`: what the WAL receiver does after a writer's mutations tagged up to `lsn`,
  // so that reads at head() see them.
  absl::Status ExtendWal(Lsn lsn) {
    if (lsn < head_) return absl::OkStatus();
    CAMBIUM_ASSIGN_OR_RETURN(auto main, Main());
    WalBuilder wal(head_);
    wal.Add(static_cast<uint8_t>(pg::RmgrId::kLogicalMessage), 0, 1,
            std::string(lsn.value() - head_.value() + 1024, 'w'));
    wal.AddCommit(701, pg::TimeToPgTimestamp(absl::Now()));
    CAMBIUM_RETURN_IF_ERROR(repo().archive().Append(*main, head_, wal.bytes(), true));
    head_ = main->last_record_lsn();
    return absl::OkStatus();
  }
  v1::TimelineRef Ref(const Timeline& t) const {
    v1::TimelineRef ref;
    ToProto(tenant_, t.id(), &ref);
    return ref;
  }

  // Flushes every memtable and waits (up to 5 minutes) for compactions to finish, so
  // a measurement does not share the disk with the load that preceded it.
  absl::Status Settle() {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    std::vector<rocksdb::ColumnFamilyHandle*> all;
    for (Family f : {Family::kMeta, Family::kBlocks, Family::kFiles, Family::kWal})
      all.push_back(store().cf(f));
    CAMBIUM_RETURN_IF_ERROR(FromRocks(store().db()->Flush(fo, all), "flush"));
    const auto deadline = Clock::now() + std::chrono::minutes(5);
    while (Clock::now() < deadline) {
      uint64_t running = 0, pending = 0;
      store().db()->GetIntProperty("rocksdb.num-running-compactions", &running);
      store().db()->GetIntProperty(store().cf(Family::kBlocks), "rocksdb.compaction-pending",
                                   &pending);
      if (running == 0 && pending == 0) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::OkStatus();
  }

 private:
  Server() = default;

  absl::Status Open() {
    CAMBIUM_ASSIGN_OR_RETURN(server_, PageServer::Start(config_));
    auto channel = MakeChannel(absl::StrFormat("127.0.0.1:%d", server_->port()));
    pages_ = v1::PageService::NewStub(channel);
    mgmt_ = v1::ManagementService::NewStub(channel);
    return absl::OkStatus();
  }
  void Close() {
    pages_.reset();
    mgmt_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
  }

  // Tenant "bench", root branch "main" with 64 KiB of archived WAL ending in a
  // commit, so that branches at its head (and tags below it) are valid.
  absl::Status CreateRoot() {
    CAMBIUM_ASSIGN_OR_RETURN(TenantInfo t, repo().CreateTenant("bench", absl::ZeroDuration()));
    tenant_ = t.id;
    CAMBIUM_ASSIGN_OR_RETURN(auto main, repo().CreateRootTimeline("bench", "main", kWalStart));
    WalBuilder wal(kWalStart);
    wal.Add(static_cast<uint8_t>(pg::RmgrId::kLogicalMessage), 0, 1, std::string(64 << 10, 'w'));
    wal.AddCommit(700, pg::TimeToPgTimestamp(absl::Now()));
    CAMBIUM_RETURN_IF_ERROR(repo().archive().Append(*main, kWalStart, wal.bytes(), true));
    head_ = main->last_record_lsn();
    main_id_ = main->id();
    return absl::OkStatus();
  }

  std::unique_ptr<TempDir> dir_;  // destroyed last
  PageServerConfig config_;
  std::unique_ptr<PageServer> server_;
  std::unique_ptr<v1::PageService::Stub> pages_;
  std::unique_ptr<v1::ManagementService::Stub> mgmt_;
  TenantId tenant_;
  TimelineId main_id_;
  Lsn head_;
};

// The single writer of a timeline, applying batches in-process (no gRPC).
class DirectWriter {
 public:
  static absl::StatusOr<DirectWriter> Attach(Timeline* t, Lsn start) {
    CAMBIUM_ASSIGN_OR_RETURN(uint64_t gen, t->Attach("bench", start, true, absl::Seconds(30)));
    return DirectWriter(t, gen);
  }
  absl::Status Apply(const Mutations& batch) {
    return t_->ApplyBatch(gen_, ++seq_, batch, false).status();
  }
  absl::Status Barrier() { return t_->Barrier(gen_, seq_, absl::Minutes(5)).status(); }
  absl::Status Detach() { return t_->Detach(gen_); }

 private:
  DirectWriter(Timeline* t, uint64_t gen) : t_(t), gen_(gen) {}
  Timeline* t_;
  uint64_t gen_;
  uint64_t seq_ = 0;
};

// Writes blocks [0, n) of the relation (1 GiB segments) on the root in batches of
// `batch_blocks`, batch i tagged head + i, then archives WAL past the last tag (a
// writer attaches at the archived head, issue 9).
absl::Status LoadRelation(Server& server, uint64_t n, int batch_blocks) {
  CAMBIUM_ASSIGN_OR_RETURN(auto main, server.Main());
  const Lsn start = server.head();
  CAMBIUM_ASSIGN_OR_RETURN(DirectWriter w, DirectWriter::Attach(main.get(), start));
  Mutations batch;
  *batch.Add() = MMkdir("base", start);
  *batch.Add() = MMkdir("base/5", start);
  CAMBIUM_RETURN_IF_ERROR(w.Apply(batch));
  Lsn tag = start;
  for (uint64_t block = 0; block < n;) {
    batch.Clear();
    tag += 1;
    for (int i = 0; i < batch_blocks && block < n; ++i) AddRelationBlock(&batch, block++, tag);
    CAMBIUM_RETURN_IF_ERROR(w.Apply(batch));
  }
  CAMBIUM_RETURN_IF_ERROR(w.Barrier());
  CAMBIUM_RETURN_IF_ERROR(w.Detach());
  return server.ExtendWal(tag);
}

// Creates n one-block files base/5/<100000 + i> on the root.
absl::Status LoadFiles(Server& server, uint64_t n) {
  CAMBIUM_ASSIGN_OR_RETURN(auto main, server.Main());
  const Lsn start = server.head();
  CAMBIUM_ASSIGN_OR_RETURN(DirectWriter w, DirectWriter::Attach(main.get(), start));
  Mutations batch;
  *batch.Add() = MMkdir("base", start);
  *batch.Add() = MMkdir("base/5", start);
  Lsn tag = start;
  for (uint64_t i = 0; i < n;) {
    tag += 1;
    for (int k = 0; k < 1000 && i < n; ++k, ++i) {
      const std::string path = absl::StrFormat("base/5/%d", 100000 + i);
      *batch.Add() = MCreate(path, tag);
      std::string page;
      FillPage(&page, i);
      *batch.Add() = MWrite(path, tag, 0, std::move(page));
    }
    CAMBIUM_RETURN_IF_ERROR(w.Apply(batch));
    batch.Clear();
  }
  CAMBIUM_RETURN_IF_ERROR(w.Barrier());
  CAMBIUM_RETURN_IF_ERROR(w.Detach());
  return server.ExtendWal(tag);
}

// --- 1. Branch creation vs data size ----------------------------------------------

double ThreadCpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

// Runs `slow` on another thread and, once it has run for 20 ms, times `probe` here:
// shows whether `slow` blocks the probe (e.g. by holding the repository lock).
// Returns {slow ms, probe ms}.
std::pair<double, double> ProbeDuring(const std::function<void()>& slow,
                                      const std::function<void()>& probe) {
  std::atomic<bool> started{false};
  double slow_ms = 0;
  std::thread t([&] {
    started = true;
    const auto t0 = Clock::now();
    slow();
    slow_ms = MicrosSince(t0) / 1e3;
  });
  while (!started) std::this_thread::yield();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto t0 = Clock::now();
  probe();
  const double probe_ms = MicrosSince(t0) / 1e3;
  t.join();
  return {slow_ms, probe_ms};
}

// One store of the branch-creation comparison: a root holding n block versions (or n
// files), and the latencies of the branches created on it.
struct BranchSeries {
  int64_t n = 0;
  std::unique_ptr<Server> server;
  std::vector<double> wall_us, cpu_us;
  double load_s = 0, settle_s = 0;
  double get_main_cold_ms = -1;  // GetBranch("main") right after the load
  double get_timeline_ms = -1;   // GetTimeline("main") issued 20 ms into that GetBranch
};
struct BranchResults {
  std::vector<BranchSeries> series;  // ascending n
  std::vector<double> floor_in_place_us, floor_append_us;
};
std::map<bool, std::unique_ptr<BranchResults>> g_branch;  // by layout (true = files)

// Largest store on which GetBranch("main") is timed (it reads every stored version).
constexpr int64_t kMaxGetBranchBlocks = 300000;

absl::Status LoadSeries(BranchSeries& s, bool files) {
  CAMBIUM_ASSIGN_OR_RETURN(s.server, Server::Start());
  auto t0 = Clock::now();
  CAMBIUM_RETURN_IF_ERROR(files ? LoadFiles(*s.server, s.n) : LoadRelation(*s.server, s.n, 1024));
  s.load_s = MicrosSince(t0) / 1e6;
  t0 = Clock::now();
  CAMBIUM_RETURN_IF_ERROR(s.server->Settle());
  s.settle_s = MicrosSince(t0) / 1e6;
  return absl::OkStatus();
}

// Builds every store of a layout, then creates branches round-robin over them (and
// takes a floor sample per round), so that every size sees the same disk conditions.
absl::StatusOr<BranchResults*> BranchResultsFor(bool files) {
  if (g_branch[files]) return g_branch[files].get();
  auto r = std::make_unique<BranchResults>();
  for (int64_t n : files ? g_options.branch_files : g_options.branch_blocks) {
    r->series.emplace_back();
    r->series.back().n = n;
    CAMBIUM_RETURN_IF_ERROR(LoadSeries(r->series.back(), files));
  }
  for (BranchSeries& s : r->series) CAMBIUM_RETURN_IF_ERROR(s.server->Settle());
  SyncedFloors floor(r->series.front().server->dir());
  const size_t k = r->series.size();
  for (int i = 0; i < g_options.branch_samples; ++i) {
    for (size_t j = 0; j < k; ++j) {
      BranchSeries& s = r->series[(i + j) % k];
      const double cpu0 = ThreadCpuMicros();
      const auto t0 = Clock::now();
      auto b = s.server->repo().CreateBranch("bench", absl::StrFormat("b%05d", i), "main", {},
                                             std::nullopt);
      s.wall_us.push_back(MicrosSince(t0));
      s.cpu_us.push_back(ThreadCpuMicros() - cpu0);
      if (!b.ok()) return b.status();
    }
    CAMBIUM_RETURN_IF_ERROR(floor.Sample());
  }
  r->floor_in_place_us = floor.in_place_us;
  r->floor_append_us = floor.append_us;
  for (BranchSeries& s : r->series) {
    if (s.n <= kMaxGetBranchBlocks) {
      absl::Status status;
      std::tie(s.get_main_cold_ms, s.get_timeline_ms) =
          ProbeDuring([&] { status = s.server->repo().GetBranch("bench", "main").status(); },
                      [&] { (void)s.server->Main(); });
      CAMBIUM_RETURN_IF_ERROR(status);
    }
    s.server.reset();  // frees the disk
  }
  g_branch[files] = std::move(r);
  return g_branch[files].get();
}

absl::Status RunBranchCreate(benchmark::State& state, bool files, int64_t n) {
  CAMBIUM_ASSIGN_OR_RETURN(BranchResults * r, BranchResultsFor(files));
  const BranchSeries* s = nullptr;
  for (const BranchSeries& x : r->series) s = x.n == n ? &x : s;
  if (s == nullptr) return absl::InternalError("no such series");
  const Stats b = Summarize(s->wall_us), cpu = Summarize(s->cpu_us);
  const Stats base = Summarize(r->series.front().wall_us);
  const Stats base_cpu = Summarize(r->series.front().cpu_us);
  const Stats f = Summarize(r->floor_in_place_us), fa = Summarize(r->floor_append_us);
  SetLatency(state, "", b);
  SetLatency(state, "cpu_", cpu);
  SetLatency(state, "floor_", f);
  state.counters["floor_append_p50_us"] = fa.p50;
  state.counters["ratio_p50"] = b.p50 / f.p50;
  state.counters["vs_smallest_p50"] = b.p50 / base.p50;
  state.counters["vs_smallest_p99"] = b.p99 / base.p99;
  state.counters["load_MiBps"] = static_cast<double>(n) * kBlockSize / (1 << 20) / s->load_s;
  state.counters["get_main_cold_ms"] = s->get_main_cold_ms;
  state.SetIterationTime(b.p50 / 1e6);
  g_summary.push_back(absl::StrFormat(
      "BranchCreate %s=%-7d p50 %6.0f us p99 %6.0f us (cpu p50 %5.0f us) | floor p50 %5.0f us "
      "p99 %6.0f us (append %5.0f) | ratio p50 %4.2f | vs smallest p50 %4.2f p99 %4.2f cpu %4.2f | "
      "load %.1f s "
      "(%.0f MiB/s) settle %.1f s | GetBranch(main) after load %.1f ms, a GetTimeline during it "
      "%.1f ms",
      files ? "files" : "blocks", n, b.p50, b.p99, cpu.p50, f.p50, f.p99, fa.p50, b.p50 / f.p50,
      b.p50 / base.p50, b.p99 / base.p99, cpu.p50 / base_cpu.p50, s->load_s,
      static_cast<double>(n) * kBlockSize / (1 << 20) / s->load_s, s->settle_s, s->get_main_cold_ms,
      s->get_timeline_ms));
  return absl::OkStatus();
}

// --- 2. GetPages over gRPC vs ancestry depth --------------------------------------

constexpr uint64_t kReadBlocks = 1024;  // 8 MiB: the working set stays in the cache

// A server whose root holds kReadBlocks blocks, and a chain main <- d001 <- ... <-
// dNNN of branches at the head, shared by the GetPages configurations.
struct ReadFixture {
  std::unique_ptr<Server> server;
  std::map<int, std::shared_ptr<Timeline>> by_depth;  // 0 = main
};
std::unique_ptr<ReadFixture> g_read;

absl::StatusOr<ReadFixture*> GetReadFixture() {
  if (g_read) return g_read.get();
  auto f = std::make_unique<ReadFixture>();
  CAMBIUM_ASSIGN_OR_RETURN(f->server, Server::Start());
  CAMBIUM_RETURN_IF_ERROR(LoadRelation(*f->server, kReadBlocks, 1024));
  CAMBIUM_ASSIGN_OR_RETURN(f->by_depth[0], f->server->Main());
  std::string parent = "main";
  for (int d = 1; d <= g_options.read_depth_max; ++d) {
    const std::string name = absl::StrFormat("d%03d", d);
    CAMBIUM_ASSIGN_OR_RETURN(
        BranchInfo b, f->server->repo().CreateBranch("bench", name, parent, {}, std::nullopt));
    CAMBIUM_ASSIGN_OR_RETURN(f->by_depth[d],
                             f->server->repo().GetTimeline(f->server->tenant(), b.timeline_id));
    parent = name;
  }
  CAMBIUM_RETURN_IF_ERROR(f->server->Settle());
  g_read = std::move(f);
  return g_read.get();
}

absl::Status CheckPages(const v1::GetPagesRequest& req, const v1::GetPagesResponse& resp) {
  if (resp.pages_size() != req.pages_size()) return absl::InternalError("wrong page count");
  for (int i = 0; i < resp.pages_size(); ++i) {
    const v1::Page& p = resp.pages(i);
    if (p.status().code() != 0) return absl::InternalError(p.status().message());
    uint64_t id = 0;
    if (p.data().size() != kBlockSize) return absl::InternalError("short page");
    std::memcpy(&id, p.data().data(), sizeof(id));
    if (id != req.pages(i).block_no()) return absl::InternalError("page has wrong contents");
  }
  return absl::OkStatus();
}

// Round-trip samples of GetPages (b pages each) on `t`, interleaved with a unary
// ListTenants (the floor) and an empty GetPages on the same stream.
struct ReadSamples {
  std::vector<double> get, unary, empty;
};

absl::StatusOr<ReadSamples> SampleReads(Server& server, const Timeline& t, int batch, int n) {
  grpc::ClientContext ctx;
  auto stream = server.pages().GetPages(&ctx);
  std::mt19937_64 rng(7);
  ReadSamples out;
  v1::GetPagesRequest req, empty;
  *req.mutable_timeline() = server.Ref(t);
  req.set_lsn(server.head().value());
  empty = req;
  v1::GetPagesResponse resp;
  const int warmup = std::max(10, n / 10);
  for (int i = 0; i < warmup + n; ++i) {
    req.clear_pages();
    const uint64_t first = rng() % (kReadBlocks - batch + 1);
    for (int k = 0; k < batch; ++k) {
      v1::PageRef* p = req.add_pages();
      p->set_path(kRelation);
      p->set_block_no(static_cast<uint32_t>(first + k));
    }
    auto start = Clock::now();
    if (!stream->Write(req) || !stream->Read(&resp)) break;
    const double get_us = MicrosSince(start);
    CAMBIUM_RETURN_IF_ERROR(CheckPages(req, resp));
    start = Clock::now();
    if (!stream->Write(empty) || !stream->Read(&resp)) break;
    const double empty_us = MicrosSince(start);
    grpc::ClientContext uctx;
    v1::ListTenantsResponse tenants;
    start = Clock::now();
    grpc::Status us = server.mgmt().ListTenants(&uctx, v1::ListTenantsRequest(), &tenants);
    const double unary_us = MicrosSince(start);
    if (!us.ok()) return absl::InternalError("ListTenants: " + us.error_message());
    if (i < warmup) continue;
    out.get.push_back(get_us);
    out.empty.push_back(empty_us);
    out.unary.push_back(unary_us);
  }
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  if (!s.ok()) return absl::InternalError("GetPages: " + s.error_message());
  if (out.get.size() != static_cast<size_t>(n)) return absl::InternalError("stream ended early");
  return out;
}

absl::Status RunGetPages(benchmark::State& state, int depth, int batch) {
  CAMBIUM_ASSIGN_OR_RETURN(ReadFixture * f, GetReadFixture());
  const int n = batch == 1 ? g_options.read_samples : std::max(50, g_options.read_samples / 4);
  CAMBIUM_ASSIGN_OR_RETURN(ReadSamples r,
                           SampleReads(*f->server, *f->by_depth.at(depth), batch, n));
  const Stats g = Summarize(r.get), u = Summarize(r.unary), e = Summarize(r.empty);
  SetLatency(state, "", g);
  SetLatency(state, "floor_unary_", u);
  state.counters["empty_stream_p50_us"] = e.p50;
  state.counters["ratio_p50"] = g.p50 / u.p50;
  const double pages_per_s = batch * 1e6 / g.mean;
  state.counters["pages_per_s"] = pages_per_s;
  state.counters["MiBps"] = pages_per_s * kBlockSize / (1 << 20);
  state.SetIterationTime(g.p50 / 1e6);
  g_summary.push_back(absl::StrFormat(
      "GetPages depth=%-3d batch=%-2d  p50 %7.0f us  p99 %7.0f us | floor unary p50 %4.0f us "
      "p99 %5.0f us, empty stream msg p50 %4.0f us | ratio p50 %6.2f | %7.0f pages/s %6.1f MiB/s "
      "| per page %6.1f us",
      depth, batch, g.p50, g.p99, u.p50, u.p99, e.p50, g.p50 / u.p50, pages_per_s,
      pages_per_s * kBlockSize / (1 << 20), g.p50 / batch));
  return absl::OkStatus();
}

// --- 2b. The cost of authentication on GetPages ------------------------------------

// Samples against `server` of: one GetPages of 1 page on an open stream (what a
// shim does per read: the stream was authenticated once, when it opened), a new
// stream with one GetPages (authenticated per stream), and a unary ListTenants
// (authenticated per call, and one audit record per call). The page is one the root does not hold
// (its per-page status says so): the loaders of the GetPages benchmark above cannot attach below
// the archived WAL any more, and what is measured here is the call, not the read.
struct AuthSamples {
  std::vector<double> on_stream, new_stream, unary;
};

absl::Status SampleAuthReads(Server& server, int n, AuthSamples* out) {
  CAMBIUM_ASSIGN_OR_RETURN(auto main, server.Main());
  v1::GetPagesRequest req;
  *req.mutable_timeline() = server.Ref(*main);
  req.set_lsn(server.head().value());
  v1::PageRef* p = req.add_pages();
  p->set_path(kRelation);
  p->set_block_no(0);
  v1::GetPagesResponse resp;
  // Each kind in its own loop: an audited management call between two stream
  // messages (a write(2) to the audit log) slowed the next message by itself.
  grpc::ClientContext ctx;
  auto stream = server.pages().GetPages(&ctx);
  for (int i = 0; i < n + 10; ++i) {
    const auto start = Clock::now();
    if (!stream->Write(req) || !stream->Read(&resp)) break;
    if (i >= 10) out->on_stream.push_back(MicrosSince(start));
  }
  stream->WritesDone();
  grpc::Status s = stream->Finish();
  if (!s.ok()) return absl::InternalError("GetPages: " + s.error_message());
  for (int i = 0; i < n + 10; ++i) {
    const auto start = Clock::now();
    grpc::ClientContext c2;
    auto fresh = server.pages().GetPages(&c2);
    if (!fresh->Write(req) || !fresh->Read(&resp)) return absl::InternalError("new stream failed");
    fresh->WritesDone();
    grpc::Status fs = fresh->Finish();
    if (!fs.ok()) return absl::InternalError("GetPages (new stream): " + fs.error_message());
    if (i >= 10) out->new_stream.push_back(MicrosSince(start));
  }
  for (int i = 0; i < n + 10; ++i) {
    grpc::ClientContext uctx;
    v1::ListTenantsResponse tenants;
    const auto start = Clock::now();
    grpc::Status us = server.mgmt().ListTenants(&uctx, v1::ListTenantsRequest(), &tenants);
    if (!us.ok()) return absl::InternalError("ListTenants: " + us.error_message());
    if (i >= 10) out->unary.push_back(MicrosSince(start));
  }
  return absl::OkStatus();
}

// Two servers in one run: one without security (as a library test runs it) and one
// with the stack's service token and authenticator (as the daemon runs); samples
// alternate between them in rounds so that drift of the machine affects both alike.
absl::Status RunGetPagesAuth(benchmark::State& state) {
  const ProcessSecurity saved = GetProcessSecurity();
  SetProcessSecurity(ProcessSecurity());
  absl::StatusOr<std::unique_ptr<Server>> plain = Server::Start();
  ProcessSecurity with_token;
  CAMBIUM_ASSIGN_OR_RETURN(with_token.client_token, auth::MakeToken(auth::kServiceId));
  SetProcessSecurity(with_token);
  absl::StatusOr<std::unique_ptr<Server>> authed = Server::Start();
  SetProcessSecurity(saved);
  CAMBIUM_RETURN_IF_ERROR(plain.status());
  CAMBIUM_RETURN_IF_ERROR(authed.status());
  AuthSamples off, on;
  const int rounds = 10, n = std::max(50, g_options.read_samples / rounds);
  for (int r = 0; r < rounds; ++r) {
    CAMBIUM_RETURN_IF_ERROR(SampleAuthReads(**plain, n, &off));
    CAMBIUM_RETURN_IF_ERROR(SampleAuthReads(**authed, n, &on));
  }
  const Stats g0 = Summarize(off.on_stream), g1 = Summarize(on.on_stream);
  const Stats n0 = Summarize(off.new_stream), n1 = Summarize(on.new_stream);
  const Stats u0 = Summarize(off.unary), u1 = Summarize(on.unary);
  state.counters["getpages_p50_us_noauth"] = g0.p50;
  state.counters["getpages_p50_us_auth"] = g1.p50;
  state.counters["getpages_ratio_p50"] = g1.p50 / g0.p50;
  state.counters["new_stream_ratio_p50"] = n1.p50 / n0.p50;
  state.counters["unary_ratio_p50"] = u1.p50 / u0.p50;
  state.SetIterationTime(g1.p50 / 1e6);
  g_summary.push_back(absl::StrFormat(
      "Auth (p50 / p99 us, without -> with authentication, %zu samples each):\n"
      "  GetPages 1 page on an open stream  %6.0f / %6.0f -> %6.0f / %6.0f  ratio p50 %.3f\n"
      "  new GetPages stream + 1 page        %6.0f / %6.0f -> %6.0f / %6.0f  ratio p50 %.3f\n"
      "  unary ListTenants                   %6.0f / %6.0f -> %6.0f / %6.0f  ratio p50 %.3f",
      off.on_stream.size(), g0.p50, g0.p99, g1.p50, g1.p99, g1.p50 / g0.p50, n0.p50, n0.p99, n1.p50,
      n1.p99, n1.p50 / n0.p50, u0.p50, u0.p99, u1.p50, u1.p99, u1.p50 / u0.p50));
  return absl::OkStatus();
}

// --- 3. PutMutations throughput ---------------------------------------------------

// One writer session on the root of `server`, over gRPC or in-process.
class PutWriter {
 public:
  PutWriter(Server* server, bool grpc) : server_(server), grpc_(grpc) {}

  absl::Status Attach() {
    CAMBIUM_ASSIGN_OR_RETURN(main_, server_->Main());
    if (!grpc_) {
      start_ = server_->head();
      CAMBIUM_ASSIGN_OR_RETURN(DirectWriter w, DirectWriter::Attach(main_.get(), start_));
      direct_ = std::make_unique<DirectWriter>(std::move(w));
      return absl::OkStatus();
    }
    v1::AttachWriterRequest req;
    *req.mutable_timeline() = server_->Ref(*main_);
    req.set_endpoint("bench");
    start_ = server_->head();
    req.set_start_lsn(start_.value());
    v1::AttachWriterResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = server_->pages().AttachWriter(&ctx, req, &resp);
    if (!s.ok()) return absl::InternalError("AttachWriter: " + s.error_message());
    generation_ = resp.generation();
    return absl::OkStatus();
  }

  // Writes `batches` batches of kPutBatchBlocks new blocks, with a Barrier after every
  // `barrier_every` batches and always after the last. Returns MiB/s; barrier
  // latencies are appended to *barrier_us.
  absl::StatusOr<double> Run(int batches, int barrier_every, std::vector<double>* barrier_us);

 private:
  absl::Status Barrier(uint64_t seq, std::vector<double>* barrier_us);
  void NextBatch(v1::PutMutationsRequest* req);

  Server* server_;
  const bool grpc_;
  Lsn start_;  // the writer's start: the root's archived head at attach
  std::shared_ptr<Timeline> main_;
  std::unique_ptr<DirectWriter> direct_;
  uint64_t generation_ = 0;
  uint64_t seq_ = 0;
  uint64_t next_block_ = 0;
};

void PutWriter::NextBatch(v1::PutMutationsRequest* req) {
  Mutations* m = req->mutable_mutations();
  m->Clear();
  const Lsn tag = start_ + (seq_ + 1);
  if (seq_ == 0) {
    *m->Add() = MMkdir("base", tag);
    *m->Add() = MMkdir("base/5", tag);
  }
  for (int i = 0; i < kPutBatchBlocks; ++i) AddRelationBlock(m, next_block_++, tag);
  req->set_seq(++seq_);
}

absl::Status PutWriter::Barrier(uint64_t seq, std::vector<double>* barrier_us) {
  const auto start = Clock::now();
  if (!grpc_) {
    CAMBIUM_RETURN_IF_ERROR(direct_->Barrier());
  } else {
    v1::BarrierRequest req;
    *req.mutable_timeline() = server_->Ref(*main_);
    req.set_generation(generation_);
    req.set_up_to_seq(seq);
    v1::BarrierResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = server_->pages().Barrier(&ctx, req, &resp);
    if (!s.ok()) return absl::InternalError("Barrier: " + s.error_message());
  }
  barrier_us->push_back(MicrosSince(start));
  return absl::OkStatus();
}

absl::StatusOr<double> PutWriter::Run(int batches, int barrier_every,
                                      std::vector<double>* barrier_us) {
  v1::PutMutationsRequest req;
  *req.mutable_timeline() = server_->Ref(*main_);
  req.set_generation(generation_);
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReaderWriter<v1::PutMutationsRequest, v1::PutMutationsResponse>>
      stream;
  std::thread acks;
  const auto start = Clock::now();
  if (grpc_) {
    stream = server_->pages().PutMutations(&ctx);
    acks = std::thread([&stream] {
      v1::PutMutationsResponse resp;
      while (stream->Read(&resp)) {
      }
    });
  }
  absl::Status status;
  for (int i = 1; i <= batches && status.ok(); ++i) {
    NextBatch(&req);
    if (grpc_ && !stream->Write(req)) status = absl::InternalError("PutMutations stream broke");
    if (!grpc_) status = direct_->Apply(req.mutations());
    if (status.ok() && (i == batches || (barrier_every > 0 && i % barrier_every == 0)))
      status = Barrier(seq_, barrier_us);
  }
  const double secs = MicrosSince(start) / 1e6;
  if (grpc_) {
    stream->WritesDone();
    acks.join();
    grpc::Status s = stream->Finish();
    if (status.ok() && !s.ok()) status = absl::InternalError("PutMutations: " + s.error_message());
  }
  CAMBIUM_RETURN_IF_ERROR(status);
  return static_cast<double>(batches) * kPutBatchBlocks * kBlockSize / (1 << 20) / secs;
}

// Aggregate throughput over segments of equal size: total bytes / total time.
double Aggregate(const std::vector<double>& mibps) {
  double secs = 0;
  for (double v : mibps) secs += 1.0 / v;
  return static_cast<double>(mibps.size()) / secs;
}

std::string JoinMiBps(const std::vector<double>& v) {
  return absl::StrJoin(v, "/",
                       [](std::string* o, double x) { absl::StrAppendFormat(o, "%.0f", x); });
}

absl::Status RunPut(benchmark::State& state, bool grpc, int barrier_every) {
  CAMBIUM_ASSIGN_OR_RETURN(auto server, Server::Start());
  PutWriter writer(server.get(), grpc);
  CAMBIUM_RETURN_IF_ERROR(writer.Attach());
  const uint64_t bytes = static_cast<uint64_t>(g_options.put_mib) << 20;
  const size_t chunk = kPutBatchBlocks * kBlockSize;
  const int batches = static_cast<int>(bytes / chunk);
  const std::string floor_path = server->dir().Sub("floor");
  std::vector<double> put_mibps, in_place_mibps, append_mibps, barrier_us;
  for (int round = 0; round < g_options.put_rounds; ++round) {
    CAMBIUM_ASSIGN_OR_RETURN(double fi, SequentialWriteMiBps(floor_path, FloorMode::kInPlace, bytes,
                                                             chunk, barrier_every));
    in_place_mibps.push_back(fi);
    CAMBIUM_ASSIGN_OR_RETURN(double fa, SequentialWriteMiBps(floor_path, FloorMode::kAppend, bytes,
                                                             chunk, barrier_every));
    append_mibps.push_back(fa);
    CAMBIUM_ASSIGN_OR_RETURN(double p, writer.Run(batches, barrier_every, &barrier_us));
    put_mibps.push_back(p);
  }
  const double put = Aggregate(put_mibps), floor = Aggregate(in_place_mibps);
  const double append = Aggregate(append_mibps);
  const Stats bar = Summarize(barrier_us);
  state.counters["MiBps"] = put;
  state.counters["floor_MiBps"] = floor;
  state.counters["floor_append_MiBps"] = append;
  state.counters["ratio"] = put / floor;
  state.counters["ratio_append"] = put / append;
  SetLatency(state, "barrier_", bar);
  state.SetIterationTime(static_cast<double>(bytes) / (1 << 20) / put);
  g_summary.push_back(absl::StrFormat(
      "PutMutations %-6s barrier_every=%-2d  %6.1f MiB/s | floor in place %6.1f append %6.1f "
      "MiB/s | ratio %4.2f / %4.2f | barrier p50 %6.0f us p99 %6.0f us (n=%d) | %d MiB segments: "
      "%s vs floors %s, %s",
      grpc ? "grpc" : "direct", barrier_every, put, floor, append, put / floor, put / append,
      bar.p50, bar.p99, bar.n, g_options.put_mib, JoinMiBps(put_mibps), JoinMiBps(in_place_mibps),
      JoinMiBps(append_mibps)));
  return absl::OkStatus();
}

// --- 4. Many branches in one tenant -----------------------------------------------

// GetPage (one page per request) latency on `branch`, with the unary floor.
absl::StatusOr<std::pair<Stats, Stats>> ReadLatency(Server& server, const std::string& branch) {
  CAMBIUM_ASSIGN_OR_RETURN(auto t, server.Branch(branch));
  CAMBIUM_ASSIGN_OR_RETURN(ReadSamples r, SampleReads(server, *t, 1, g_options.read_samples));
  return std::make_pair(Summarize(r.get), Summarize(r.unary));
}

struct CreateManyResult {
  std::vector<double> create_us, cpu_us, floor_us, floor_append_us;
  double total_s = 0;
  double list_1k_ms = -1;  // ListBranches once 1,000 branches exist
};

// Creates n branches of main, timing each, with a floor sample every 10 branches.
absl::StatusOr<CreateManyResult> CreateMany(Server& server, int n) {
  SyncedFloors floor(server.dir());
  CreateManyResult r;
  const auto start = Clock::now();
  for (int i = 0; i < n; ++i) {
    const double cpu0 = ThreadCpuMicros();
    const auto t0 = Clock::now();
    auto b = server.repo().CreateBranch("bench", absl::StrFormat("br-%05d", i), "main", {},
                                        std::nullopt);
    r.create_us.push_back(MicrosSince(t0));
    r.cpu_us.push_back(ThreadCpuMicros() - cpu0);
    if (!b.ok()) return b.status();
    if (i % 10 == 0) CAMBIUM_RETURN_IF_ERROR(floor.Sample());
    if (i == 999 && n > 1000) {
      const auto l0 = Clock::now();
      CAMBIUM_RETURN_IF_ERROR(server.repo().ListBranches("bench").status());
      r.list_1k_ms = MicrosSince(l0) / 1e3;
    }
  }
  r.total_s = MicrosSince(start) / 1e6;
  r.floor_us = floor.in_place_us;
  r.floor_append_us = floor.append_us;
  return r;
}

absl::Status RunManyBranches(benchmark::State& state, int n) {
  CAMBIUM_ASSIGN_OR_RETURN(auto server, Server::Start());
  CAMBIUM_RETURN_IF_ERROR(LoadRelation(*server, kReadBlocks, 1024));
  CAMBIUM_RETURN_IF_ERROR(
      server->repo().CreateBranch("bench", "first", "main", {}, std::nullopt).status());
  CAMBIUM_RETURN_IF_ERROR(server->Settle());
  CAMBIUM_ASSIGN_OR_RETURN(auto before, ReadLatency(*server, "first"));
  CAMBIUM_ASSIGN_OR_RETURN(CreateManyResult c, CreateMany(*server, n));
  const size_t window = std::min<size_t>(1000, c.create_us.size());
  const Stats first = Summarize({c.create_us.begin(), c.create_us.begin() + window});
  const Stats last = Summarize({c.create_us.end() - window, c.create_us.end()});
  const Stats first_cpu = Summarize({c.cpu_us.begin(), c.cpu_us.begin() + window});
  const Stats last_cpu = Summarize({c.cpu_us.end() - window, c.cpu_us.end()});
  const Stats all = Summarize(c.create_us);
  const Stats f = Summarize(c.floor_us), fa = Summarize(c.floor_append_us);
  CAMBIUM_ASSIGN_OR_RETURN(auto after_old, ReadLatency(*server, "first"));
  CAMBIUM_ASSIGN_OR_RETURN(auto after_new, ReadLatency(*server, absl::StrFormat("br-%05d", n - 1)));
  // ListBranches, and a GetTimeline (what every data-plane RPC starts with) during it.
  absl::Status list_status;
  size_t listed = 0;
  auto [list_ms, probe_ms] = ProbeDuring(
      [&] {
        auto l = server->repo().ListBranches("bench");
        list_status = l.status();
        if (l.ok()) listed = l->size();
      },
      [&] { (void)server->Main(); });
  CAMBIUM_RETURN_IF_ERROR(list_status);
  CAMBIUM_ASSIGN_OR_RETURN(double restart_us, server->Restart());

  const double before_norm = before.first.p50 / before.second.p50;
  const double after_norm = after_old.first.p50 / after_old.second.p50;
  state.counters["branches_per_s"] = n / c.total_s;
  SetLatency(state, "first1k_", first);
  SetLatency(state, "last1k_", last);
  SetLatency(state, "floor_", f);
  state.counters["first1k_cpu_p50_us"] = first_cpu.p50;
  state.counters["last1k_cpu_p50_us"] = last_cpu.p50;
  state.counters["ratio_p50"] = all.p50 / f.p50;
  state.counters["read_before_p50_us"] = before.first.p50;
  state.counters["read_after_p50_us"] = after_old.first.p50;
  state.counters["read_after_vs_before_floor_normalized"] = after_norm / before_norm;
  state.counters["list_ms"] = list_ms;
  state.counters["restart_ms"] = restart_us / 1e3;
  state.SetIterationTime(c.total_s / n);
  g_summary.push_back(absl::StrFormat(
      "ManyBranches n=%d: %.0f branches/s (%.1f s) | create p50 %.0f us p99 %.0f us; first 1k "
      "p50 %.0f us (cpu %.0f), last 1k p50 %.0f us (cpu %.0f): last/first wall %.2f cpu %.2f | "
      "floor in place p50 %.0f us p99 %.0f us (append %.0f) | ratio p50 %.2f",
      n, n / c.total_s, c.total_s, all.p50, all.p99, first.p50, first_cpu.p50, last.p50,
      last_cpu.p50, last.p50 / first.p50, last_cpu.p50 / first_cpu.p50, f.p50, f.p99, fa.p50,
      all.p50 / f.p50));
  g_summary.push_back(absl::StrFormat(
      "ManyBranches GetPage 1 page, depth 1: before p50 %.0f us p99 %.0f us (unary floor p50 %.0f) "
      "| after: old branch p50 %.0f us p99 %.0f us (floor %.0f), newest branch p50 %.0f us p99 "
      "%.0f us (floor %.0f) | GetPage/floor before %.2f after %.2f",
      before.first.p50, before.first.p99, before.second.p50, after_old.first.p50,
      after_old.first.p99, after_old.second.p50, after_new.first.p50, after_new.first.p99,
      after_new.second.p50, before_norm, after_norm));
  g_summary.push_back(absl::StrFormat(
      "ManyBranches ListBranches: %.0f ms with 1,000 branches, %.0f ms with %d; a GetTimeline "
      "issued during it waited %.0f ms | restart (PageServer::Start) %.0f ms",
      c.list_1k_ms, list_ms, listed, probe_ms, restart_us / 1e3));
  return absl::OkStatus();
}

// --- Registration -----------------------------------------------------------------

template <typename Fn>
void Register(const std::string& name, Fn fn) {
  benchmark::RegisterBenchmark(name.c_str(),
                               [fn](benchmark::State& state) {
                                 for (auto _ : state) {
                                   absl::Status s = fn(state);
                                   if (!s.ok()) {
                                     state.SkipWithError(s.ToString().c_str());
                                     break;
                                   }
                                 }
                               })
      ->Iterations(1)
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

void RegisterAll() {
  for (int64_t n : g_options.branch_blocks) {
    Register(absl::StrFormat("BranchCreate/blocks:%d", n),
             [n](benchmark::State& s) { return RunBranchCreate(s, false, n); });
  }
  for (int64_t n : g_options.branch_files) {
    Register(absl::StrFormat("BranchCreate/files:%d", n),
             [n](benchmark::State& s) { return RunBranchCreate(s, true, n); });
  }
  for (int depth : {0, 1, 20, g_options.read_depth_max}) {
    for (int batch : {1, 32}) {
      Register(absl::StrFormat("GetPages/depth:%d/batch:%d", depth, batch),
               [depth, batch](benchmark::State& s) { return RunGetPages(s, depth, batch); });
    }
  }
  Register("GetPagesAuth", [](benchmark::State& s) { return RunGetPagesAuth(s); });
  for (bool grpc : {true, false}) {
    for (int every : {1, 16, 0}) {
      if (!grpc && every != 0) continue;  // in-process: only the unsynced ceiling
      Register(absl::StrFormat("PutMutations/%s/barrier_every:%d", grpc ? "grpc" : "direct", every),
               [grpc, every](benchmark::State& s) { return RunPut(s, grpc, every); });
    }
  }
  const int n = g_options.many_branches;
  Register(absl::StrFormat("ManyBranches/%d", n),
           [n](benchmark::State& s) { return RunManyBranches(s, n); });
}

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> out;
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(text, ','))) {
    int64_t v;
    if (absl::SimpleAtoi(part, &v) && v > 0) out.push_back(v);
  }
  return out;
}

// Consumes --ps_* flags from argv; returns false on an unknown one.
bool ParseFlags(int* argc, char** argv) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    std::string_view arg(argv[i]);
    auto value = [&arg](std::string_view flag, std::string* v) {
      if (!arg.starts_with(flag)) return false;
      *v = std::string(arg.substr(flag.size()));
      return true;
    };
    std::string v;
    int64_t num = 0;
    if (!arg.starts_with("--ps_")) {
      argv[out++] = argv[i];
    } else if (arg == "--ps_quick") {
      g_options = Options{.branch_blocks = {1000, 5000},
                          .branch_files = {10, 200},
                          .branch_samples = 30,
                          .read_samples = 100,
                          .read_depth_max = 100,
                          .put_mib = 8,
                          .put_rounds = 2,
                          .many_branches = 300,
                          .compression = g_options.compression,
                          .blob_files = g_options.blob_files};
    } else if (value("--ps_blocks=", &v)) {
      g_options.branch_blocks = ParseList(v);
    } else if (value("--ps_files=", &v)) {
      g_options.branch_files = ParseList(v);
    } else if (value("--ps_branch_samples=", &v) && absl::SimpleAtoi(v, &num)) {
      g_options.branch_samples = static_cast<int>(num);
    } else if (value("--ps_read_samples=", &v) && absl::SimpleAtoi(v, &num)) {
      g_options.read_samples = static_cast<int>(num);
    } else if (value("--ps_put_mib=", &v) && absl::SimpleAtoi(v, &num)) {
      g_options.put_mib = num;
    } else if (value("--ps_put_rounds=", &v) && absl::SimpleAtoi(v, &num)) {
      g_options.put_rounds = static_cast<int>(num);
    } else if (value("--ps_branches=", &v) && absl::SimpleAtoi(v, &num)) {
      g_options.many_branches = static_cast<int>(num);
    } else if (value("--ps_compression=", &v) && (v == "lz4" || v == "zstd" || v == "none")) {
      g_options.compression = v;
    } else if (arg == "--ps_blob_files") {
      g_options.blob_files = true;
    } else {
      std::fprintf(stderr, "unknown or malformed flag %s\n", argv[i]);
      return false;
    }
  }
  *argc = out;
  return true;
}

}  // namespace
}  // namespace cambium::pageserver::bench

int main(int argc, char** argv) {
  using namespace cambium::pageserver::bench;  // NOLINT
  if (!ParseFlags(&argc, argv)) {
    std::fprintf(stderr,
                 "pageserver flags: --ps_quick --ps_blocks=N,N,.. --ps_files=N,N,.. "
                 "--ps_branch_samples=N --ps_read_samples=N --ps_put_mib=N --ps_put_rounds=N "
                 "--ps_branches=N --ps_compression=lz4|zstd|none --ps_blob_files\n");
    return 2;
  }
  (void)cambium::InitLogging(cambium::LogOptions{.level = cambium::LogLevel::kWarning});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_read.reset();
  std::printf(
      "\n=== Summary (medians and p99 of per-operation samples; the machine may be "
      "shared) ===\n");
  for (const std::string& line : g_summary) std::printf("%s\n", line.c_str());
  return 0;
}
