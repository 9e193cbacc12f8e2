#include "compute-shim/shim.h"

#include <pwd.h>
#include <sys/mount.h>

#include <atomic>
#include <mutex>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/pg/pg_control.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "compute-shim/block_cache.h"
#include "compute-shim/mutation_sender.h"
#include "compute-shim/pageserver_client.h"
#include "compute-shim/shim_fs.h"
#include "compute-shim/shim_metrics.h"
#include "safekeeper/wal_proposer.h"

namespace cambium::shim {

// What ShimFs::Prefetch reads before the mount: SLRU segments are 256 KiB at most;
// 4 MiB in all bounds the start's wait should a cluster have many such files.
constexpr uint64_t kPrefetchMaxFileBytes = 256 << 10;
constexpr size_t kPrefetchMaxBlocks = 512;

// Adapts the safekeeper proposer to the shim's WalTarget. WAL below where this
// timeline's safekeeper WAL starts (the parent's part of the page holding a branch
// point, or WAL already on the safekeepers) is not sent again.
class ProposerWalTarget : public WalTarget {
 public:
  ProposerWalTarget(std::unique_ptr<safekeeper::WalProposer> proposer, Lsn start)
      : proposer_(std::move(proposer)), start_(start) {}
  absl::Status Append(Lsn lsn, std::string_view bytes) override {
    if (lsn + bytes.size() <= start_) return absl::OkStatus();
    if (lsn < start_) {
      bytes.remove_prefix(start_ - lsn);
      lsn = start_;
    }
    ShimMetrics::Get().wal_appended_bytes.Increment(bytes.size());
    return proposer_->Append(lsn, bytes);
  }
  absl::Status WaitForFlush(Lsn lsn, absl::Duration timeout) override {
    metrics::ScopedTimer timer(ShimMetrics::Get().wal_quorum_flush_seconds);
    return proposer_->WaitForFlush(lsn, timeout);
  }
  safekeeper::WalProposer* proposer() { return proposer_.get(); }

 private:
  std::unique_ptr<safekeeper::WalProposer> proposer_;
  const Lsn start_;
};

struct Shim::Impl {
  ShimConfig config;
  Lsn start;
  uint64_t generation = 0;
  std::unique_ptr<PageserverClient> pageserver;
  std::unique_ptr<ProposerWalTarget> wal;
  std::unique_ptr<BlockCache> cache;
  std::unique_ptr<MutationSender> sender;
  std::unique_ptr<ShimFs> fs;
  fuse* fuse_handle = nullptr;
  std::thread loop;
  bool stopped = false;

  // The WAL Postgres replays: [wal_from, start) in pg_wal, the archive's part
  // below wal_split and the safekeepers' above (PrepareWal). It is fetched by
  // wal_fetch while Postgres already replays (FetchWal).
  Lsn wal_from;
  Lsn wal_split;
  std::thread wal_fetch;
  std::atomic<bool> stopping{false};

  ~Impl() {
    stopping = true;
    if (wal_fetch.joinable()) wal_fetch.join();
  }

  absl::Status PrepareWal(const std::string& pg_control, Lsn archive_end);
  // Fetches the WAL PrepareWal announced into pg_wal.
  absl::Status FetchWal();
  absl::Status Mount();
};

void AddShimFlags(CLI::App& app, ShimConfig* c) {
  app.option_defaults()->always_capture_default();
  app.add_option("--pageserver", c->pageserver, "Pageserver address");
  app.add_option("--safekeepers", c->safekeepers, "Safekeeper addresses, comma-separated")
      ->required();
  app.add_option("--tenant", c->tenant, "Tenant id (32 hex digits)")->required();
  app.add_option("--timeline", c->timeline, "Timeline id (32 hex digits)")->required();
  app.add_option("--mountpoint", c->mountpoint, "Where PGDATA is mounted")->required();
  app.add_option("--scratch", c->scratch, "Local scratch directory")->required();
  app.add_option("--endpoint", c->endpoint, "This endpoint's name");
  app.add_flag("--takeover", c->takeover, "Replace a writer that still looks alive");
  app.add_option("--cache-mb", c->cache_mb, "Local page cache size in MiB");
  app.add_option("--pg-user", c->pg_user, "The user Postgres runs as");
  app.add_option("--ready-file", c->ready_file, "Written with the start LSN once mounted");
  app.add_option("--writeback-cache", c->writeback_cache,
                 "Relation files use the kernel's writeback cache (true/false)");
}

absl::Status Shim::Impl::PrepareWal(const std::string& pg_control_page, Lsn archive_end) {
  CAMBIUM_ASSIGN_OR_RETURN(pg::PgControl control, pg::ParsePgControl(pg_control_page));
  const Lsn from = control.redo().SegmentStart();
  if (from > start) {
    return absl::DataLossError(absl::StrFormat("pg_control at %s names a redo point %s after it",
                                               start.ToString(), control.redo().ToString()));
  }
  // The archive has WAL up to its end; anything newer is on the safekeepers only.
  wal_from = from;
  wal_split = std::min(start, std::max(archive_end, from));
  // The whole segment of the redo point, not only from the redo point on: a
  // follower's walreceiver streams from the start of its replay point's segment,
  // which the walsender reads from this pg_wal (a trial that left the bytes before
  // the redo page zero made such a follower's start fail; issue 11).
  for (uint64_t segno = from.SegmentNo(); segno <= (start - 1).SegmentNo(); ++segno) {
    const Lsn seg_start = SegmentStartLsn(segno);
    const uint64_t end = std::min(start, seg_start + kDefaultWalSegmentSize) - seg_start;
    CAMBIUM_RETURN_IF_ERROR(
        fs->AddWalSegmentFilledLater(WalSegmentFileName(control.timeline_id(), segno), end));
  }
  fs->AddLocalDirectory("pg_wal/archive_status", 0700);
  LogInfo("wal_announced", {{"redo", control.redo()},
                            {"from", from},
                            {"to", start},
                            {"from_safekeepers", start - wal_split}});
  return absl::OkStatus();
}

absl::Status Shim::Impl::FetchWal() {
  // A stream of GetWal runs at 120-190 MB/s here, bound by one thread on each side
  // (the pageserver's archive read, the copies into messages); a branch started
  // after heavy writes fetches up to max_wal_size. A few streams fetch one segment
  // each, the next segment in LSN order going to the first stream free, so the
  // segment the replay reads next is the one being filled (issue 11).
  constexpr int kStreams = 3;
  std::vector<std::pair<Lsn, Lsn>> pieces;
  for (Lsn a = wal_from; a < wal_split;) {
    const Lsn b = std::min(wal_split, a.SegmentStart() + kDefaultWalSegmentSize);
    pieces.emplace_back(a, b);
    a = b;
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status failed;  // GUARDED_BY(mu): the first failure stops every stream
  auto sink = [&](Lsn at, std::string_view bytes) -> absl::Status {
    if (stopping.load()) return absl::CancelledError("the shim is stopping");
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed.ok()) return absl::AbortedError("another WAL stream failed");
    }
    return fs->FillWal(at, bytes);
  };
  auto stream = [&] {
    for (size_t i; (i = next.fetch_add(1)) < pieces.size();) {
      absl::Status s = pageserver->GetWal(pieces[i].first, pieces[i].second, sink);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed.ok()) failed = s;
        return;
      }
    }
  };
  std::vector<std::thread> streams;
  for (int i = 1; i < kStreams && i < static_cast<int>(pieces.size()); ++i) {
    streams.emplace_back(stream);
  }
  stream();
  for (auto& t : streams) t.join();
  CAMBIUM_RETURN_IF_ERROR(failed);
  if (start > wal_split) {
    CAMBIUM_ASSIGN_OR_RETURN(std::string tail, wal->proposer()->ReadWal(wal_split, start));
    CAMBIUM_RETURN_IF_ERROR(fs->FillWal(wal_split, tail));
  }
  return absl::OkStatus();
}

absl::Status Shim::Impl::Mount() {
  std::vector<std::string> argv = {
      "cambium-shim", "-o", "allow_other,default_permissions,fsname=cambium,subtype=cambium"};
  std::vector<char*> raw;
  for (auto& a : argv) raw.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(raw.size()), raw.data());
  fuse_handle = fuse_new(&args, &ShimFs::Operations(), sizeof(fuse_operations), fs.get());
  fuse_opt_free_args(&args);  // what fuse_new's option parsing allocated
  if (fuse_handle == nullptr) return absl::InternalError("fuse_new failed");
  if (fuse_mount(fuse_handle, config.mountpoint.c_str()) != 0) {
    fuse_destroy(fuse_handle);
    fuse_handle = nullptr;
    return absl::UnavailableError(absl::StrFormat(
        "cannot mount %s (is /dev/fuse available, and the directory empty and not mounted?)",
        config.mountpoint));
  }
  loop = std::thread([this] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 1);
    fuse_loop_cfg_set_max_threads(cfg, 64);
    fuse_loop_cfg_set_idle_threads(cfg, 16);
    int r = fuse_loop_mt(fuse_handle, cfg);
    fuse_loop_cfg_destroy(cfg);
    LogInfo("fuse_loop_exited", {{"result", r}});
  });
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Shim>> Shim::Start(const ShimConfig& config) {
  (void)ShimMetrics::Get();  // every series exists (at 0) from the start
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  CAMBIUM_ASSIGN_OR_RETURN(TenantId tenant, TenantId::Parse(config.tenant));
  CAMBIUM_ASSIGN_OR_RETURN(TimelineId timeline, TimelineId::Parse(config.timeline));
  struct passwd* pw = getpwnam(config.pg_user.c_str());
  if (pw == nullptr) return absl::NotFoundError("user " + config.pg_user + " does not exist");

  impl->pageserver = std::make_unique<PageserverClient>(config.pageserver, tenant, timeline);
  CAMBIUM_ASSIGN_OR_RETURN(v1::TimelineInfo info, impl->pageserver->GetTimelineInfo());
  if (info.writer_active() && !config.takeover) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "timeline %s is already being written by %s; stop that endpoint first (or pass "
        "--takeover if it is dead)",
        config.timeline, info.writer()));
  }
  // Elect this endpoint the timeline's WAL writer; its WAL continues where the most
  // advanced safekeeper's ends (or at the timeline's start, if none has any of its
  // WAL yet).
  safekeeper::ProposerOptions popts;
  popts.safekeepers = absl::StrSplit(config.safekeepers, ',', absl::SkipEmpty());
  popts.tenant = tenant;
  popts.timeline = timeline;
  popts.name = config.endpoint;
  popts.timeline_start = Lsn(info.start_lsn());
  // A safekeeper that lags below what its peers still store (they removed WAL the
  // pageserver archived) catches up from the pageserver's archive.
  PageserverClient* archive = impl->pageserver.get();
  popts.read_archived = [archive](Lsn from, Lsn to) { return archive->GetWal(from, to); };
  CAMBIUM_ASSIGN_OR_RETURN(auto proposer, safekeeper::WalProposer::Create(popts));
  CAMBIUM_ASSIGN_OR_RETURN(impl->start, proposer->Elect());
  impl->wal = std::make_unique<ProposerWalTarget>(std::move(proposer), impl->start);
  CAMBIUM_ASSIGN_OR_RETURN(
      auto attached, impl->pageserver->AttachWriter(config.endpoint, impl->start, config.takeover));
  impl->generation = attached.generation();
  LogInfo("writer_elected",
          {{"timeline", timeline}, {"start_lsn", impl->start}, {"generation", impl->generation}});
  // A start that fails from here on gives the timeline back: the next endpoint must
  // not wait out a lease for a writer that never ran.
  PageserverClient* pageserver = impl->pageserver.get();
  const uint64_t generation = impl->generation;
  absl::Cleanup detach_on_failure = [pageserver, generation] {
    absl::Status s = pageserver->DetachWriter(generation);
    LogWarning("start_failed_writer_detached", {{"generation", generation}, {"detach", s}});
  };

  impl->cache = BlockCache::Create(config.cache_mb * 128);
  BlockCache* cache = impl->cache.get();
  impl->sender = std::make_unique<MutationSender>(
      impl->pageserver.get(), impl->generation, MutationSenderOptions{},
      [cache](uint64_t n) { cache->MutationsDurable(n); });
  impl->fs = std::make_unique<ShimFs>(ShimFsOptions{.scratch = config.scratch,
                                                    .uid = pw->pw_uid,
                                                    .gid = pw->pw_gid,
                                                    .writeback_cache = config.writeback_cache},
                                      impl->pageserver.get(), impl->sender.get(), cache,
                                      impl->wal.get(), impl->start);
  CAMBIUM_ASSIGN_OR_RETURN(auto manifest, impl->pageserver->GetManifest(impl->start));
  CAMBIUM_RETURN_IF_ERROR(impl->fs->LoadManifest(manifest));
  auto control = impl->pageserver->GetPages(impl->start, {{"global/pg_control", 0}});
  CAMBIUM_RETURN_IF_ERROR(control[0].status);
  CAMBIUM_RETURN_IF_ERROR(impl->PrepareWal(control[0].data, Lsn(info.wal_archive_end())));
  {
    // Only an optimisation: a failure here is a failure of those reads later.
    const absl::Time began = absl::Now();
    absl::StatusOr<size_t> warmed =
        impl->fs->Prefetch(impl->start, kPrefetchMaxFileBytes, kPrefetchMaxBlocks);
    if (warmed.ok()) {
      LogInfo("prefetched",
              {{"blocks", *warmed}, {"took", absl::FormatDuration(absl::Now() - began)}});
    } else {
      LogWarning("prefetch_failed", {{"status", warmed.status()}});
    }
  }
  CAMBIUM_RETURN_IF_ERROR(impl->Mount());
  // Postgres may start now: its recovery reads the WAL as the fetch brings it.
  impl->wal_fetch = std::thread([raw = impl.get()] {
    const absl::Time began = absl::Now();
    absl::Status fetched = raw->FetchWal();
    raw->fs->EndWalFill(fetched);
    if (fetched.ok()) {
      LogInfo("wal_prepared", {{"from", raw->wal_from},
                               {"to", raw->start},
                               {"from_safekeepers", raw->start - raw->wal_split},
                               {"took", absl::FormatDuration(absl::Now() - began)}});
    } else {
      LogError("wal_fetch_failed",
               {{"from", raw->wal_from}, {"to", raw->start}, {"status", fetched}});
    }
  });
  if (!config.ready_file.empty()) {
    // Atomic: whoever polls for the file must never read it half written.
    CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(config.ready_file, impl->start.ToString() + "\n"));
  }
  LogInfo(
      "mounted",
      {{"mountpoint", config.mountpoint}, {"start_lsn", impl->start}, {"files", manifest.size()}});
  std::move(detach_on_failure).Cancel();
  return std::unique_ptr<Shim>(new Shim(std::move(impl)));
}

Shim::Shim(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Shim::~Shim() { (void)Stop(); }

Lsn Shim::start_lsn() const { return impl_->start; }

absl::Status Shim::Stop() {
  if (impl_->stopped) return absl::OkStatus();
  impl_->stopped = true;
  impl_->stopping = true;
  if (impl_->wal_fetch.joinable()) impl_->wal_fetch.join();
  absl::Status barrier = impl_->sender->Barrier();
  if (impl_->fuse_handle != nullptr) {
    fuse_exit(impl_->fuse_handle);
    // A lazy unmount ends the FUSE session once nothing uses the mount.
    umount2(impl_->config.mountpoint.c_str(), MNT_DETACH);
    if (impl_->loop.joinable()) impl_->loop.join();
    fuse_unmount(impl_->fuse_handle);
    fuse_destroy(impl_->fuse_handle);
    impl_->fuse_handle = nullptr;
  }
  impl_->sender->Stop();
  absl::Status detach = barrier.ok() ? impl_->pageserver->DetachWriter(impl_->generation) : barrier;
  const BlockCacheStats cache = impl_->cache->stats();
  LogInfo("unmounted", {{"mountpoint", impl_->config.mountpoint},
                        {"barrier", barrier},
                        {"detach", detach},
                        {"cache_hits", cache.hits},
                        {"cache_misses", cache.misses},
                        {"cache_evictions", cache.evictions}});
  return barrier.ok() ? detach : barrier;
}

}  // namespace cambium::shim
