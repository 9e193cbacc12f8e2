#include "safekeeper/safekeeper.h"

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "safekeeper/safekeeper_metrics.h"

namespace cambium::safekeeper {
namespace {

constexpr char kTombstoneSuffix[] = ".deleted";

}  // namespace

absl::StatusOr<std::unique_ptr<Safekeeper>> Safekeeper::Open(const SafekeeperOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  SafekeeperOptions opts = options;
  if (opts.fs == nullptr) opts.fs = FileSystem::Default();
  CAMBIUM_RETURN_IF_ERROR(opts.fs->CreateDir(opts.data_dir));
  std::unique_ptr<Safekeeper> sk(new Safekeeper(std::move(opts)));
  CAMBIUM_RETURN_IF_ERROR(sk->LoadTimelines());
  sk->RegisterMetrics();
  return sk;
}

void Safekeeper::RegisterMetrics() {
  using metrics::MetricType;
  using metrics::Sample;
  (void)SafekeeperMetrics::Get();  // the write path's series exist (at 0) from the start
  metrics::Registry& r = metrics::DefaultRegistry();
  metrics_.push_back(metrics::Must(
      r.AddCallback(MetricType::kGauge, "cambium_safekeeper_timelines",
                    "Timelines held (not deleted).", {}, [this](std::vector<Sample>* out) {
                      absl::MutexLock lock(&mu_);
                      out->push_back({.value = static_cast<double>(timelines_.size())});
                    })));
  // Per-timeline gauges, each a value of Timeline::Positions.
  using Value = double (*)(const Timeline::Positions&);
  struct Gauge {
    const char* name;
    const char* help;
    Value value;
  };
  static constexpr Gauge kGauges[] = {
      {"cambium_safekeeper_flush_lsn", "End of the WAL durable here, as a byte position.",
       [](const Timeline::Positions& p) { return static_cast<double>(p.flush.value()); }},
      {"cambium_safekeeper_commit_lsn",
       "Commit LSN learned from the writer (WAL on a quorum), as a byte position.",
       [](const Timeline::Positions& p) { return static_cast<double>(p.commit.value()); }},
      {"cambium_safekeeper_archived_lsn",
       "WAL archived by the pageserver up to here, as a byte position; commit minus archived "
       "is the archive lag.",
       [](const Timeline::Positions& p) { return static_cast<double>(p.archived.value()); }},
      {"cambium_safekeeper_wal_backpressure",
       "1 while the timeline refuses new WAL because it holds --max-unarchived-wal bytes "
       "beyond what the pageserver archived (uploaded, with an object store); commits wait "
       "meanwhile.",
       [](const Timeline::Positions& p) { return p.backpressured ? 1.0 : 0.0; }},
  };
  for (const Gauge& g : kGauges) {
    metrics_.push_back(metrics::Must(r.AddCallback(
        MetricType::kGauge, g.name, g.help, {"tenant", "timeline"},
        [this, value = g.value](std::vector<Sample>* out) {
          std::vector<std::pair<TimelineKey, std::shared_ptr<Timeline>>> timelines;
          {
            absl::MutexLock lock(&mu_);
            timelines.assign(timelines_.begin(), timelines_.end());
          }
          for (const auto& [key, t] : timelines) {
            out->push_back({.label_values = {key.tenant.ToString(), key.timeline.ToString()},
                            .value = value(t->MetricPositions())});
          }
        })));
  }
}

absl::Status Safekeeper::LoadTombstones(const std::string& tenant_dir, TenantId tenant) {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, options_.fs->ListDir(tenant_dir));
  for (const std::string& name : names) {
    if (!absl::EndsWith(name, kTombstoneSuffix)) continue;
    absl::StatusOr<TimelineId> timeline =
        TimelineId::Parse(name.substr(0, name.size() - std::strlen(kTombstoneSuffix)));
    if (!timeline.ok()) continue;
    const TimelineKey key{tenant, *timeline};
    deleted_.insert(key);
    // A crash may have interrupted the deletion: finish it. If that fails the
    // directory is left alone (never opened: the timeline is deleted) and the
    // next DeleteTimeline or restart tries again.
    absl::Status removed = RemoveTimelineDir(key);
    if (!removed.ok()) {
      LogError("timeline_remove_failed",
               {{"tenant", tenant}, {"timeline", *timeline}, {"error", removed}});
    }
  }
  return absl::OkStatus();
}

absl::Status Safekeeper::LoadTimelines() {
  FileSystem* fs = options_.fs;
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> tenants, fs->ListDir(options_.data_dir));
  absl::MutexLock lock(&mu_);
  for (const std::string& tenant_name : tenants) {
    absl::StatusOr<TenantId> tenant = TenantId::Parse(tenant_name);
    if (!tenant.ok()) continue;  // not a tenant directory
    const std::string tenant_dir = options_.data_dir + "/" + tenant_name;
    CAMBIUM_RETURN_IF_ERROR(LoadTombstones(tenant_dir, *tenant));
    CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(tenant_dir));
    for (const std::string& name : names) {
      absl::StatusOr<TimelineId> timeline = TimelineId::Parse(name);
      if (!timeline.ok() || deleted_.contains(TimelineKey{*tenant, *timeline})) continue;
      const std::string dir = tenant_dir + "/" + name;
      if (!fs->Exists(dir + "/" + kControlFileName)) {
        // Creation crashed before its control file landed: nothing was promised.
        LogWarning("timeline_without_control_file", {{"dir", dir}});
        continue;
      }
      CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<Timeline> tl,
                               Timeline::Open(fs, dir, options_.id, options_.segment_size));
      const TimelineKey key{*tenant, *timeline};
      Configure(key, *tl);
      timelines_[key] = std::move(tl);
    }
  }
  LogInfo("safekeeper_opened", {{"id", options_.id},
                                {"data_dir", options_.data_dir},
                                {"timelines", timelines_.size()},
                                {"deleted_timelines", deleted_.size()}});
  return absl::OkStatus();
}

Safekeeper::~Safekeeper() { Shutdown(); }

absl::Status Safekeeper::DeletedError(const TimelineKey& key) const {
  return absl::FailedPreconditionError(
      absl::StrFormat("timeline %s/%s was deleted on safekeeper %s; it cannot be written or read "
                      "again",
                      key.tenant.ToString(), key.timeline.ToString(), options_.id));
}

absl::StatusOr<std::shared_ptr<Timeline>> Safekeeper::Get(const TimelineKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = timelines_.find(key);
  if (it != timelines_.end()) return it->second;
  if (deleted_.contains(key)) return DeletedError(key);
  return absl::NotFoundError(absl::StrFormat("safekeeper %s has no timeline %s/%s", options_.id,
                                             key.tenant.ToString(), key.timeline.ToString()));
}

absl::StatusOr<std::shared_ptr<Timeline>> Safekeeper::GetOrCreate(const TimelineKey& key,
                                                                  Lsn timeline_start) {
  absl::MutexLock lock(&mu_);
  auto it = timelines_.find(key);
  if (it != timelines_.end()) return it->second;
  // A stale proposer must not bring a deleted timeline back.
  if (deleted_.contains(key)) return DeletedError(key);
  if (!timeline_start.valid()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timeline %s/%s is new on safekeeper %s and the request has no timeline start LSN",
        key.tenant.ToString(), key.timeline.ToString(), options_.id));
  }
  const std::string tenant_dir = options_.data_dir + "/" + key.tenant.ToString();
  const std::string dir = TimelineDir(options_.data_dir, key.tenant, key.timeline);
  auto created = [&]() -> absl::StatusOr<std::unique_ptr<Timeline>> {
    CAMBIUM_RETURN_IF_ERROR(options_.fs->CreateDir(tenant_dir));
    CAMBIUM_RETURN_IF_ERROR(SyncFailure(options_.fs->SyncDir(options_.data_dir)));
    return Timeline::Create(options_.fs, dir, options_.id, key.tenant, key.timeline, timeline_start,
                            options_.segment_size);
  }();
  if (!created.ok()) return DiskFullError(options_.id, dir, created.status());
  std::shared_ptr<Timeline> tl = std::move(*created);
  Configure(key, *tl);
  timelines_[key] = tl;
  return tl;
}

absl::Status Safekeeper::WriteTombstone(const TimelineKey& key) {
  const std::string tenant_dir = options_.data_dir + "/" + key.tenant.ToString();
  const std::string path = tenant_dir + "/" + key.timeline.ToString() + kTombstoneSuffix;
  if (options_.fs->Exists(path)) return absl::OkStatus();
  CAMBIUM_RETURN_IF_ERROR(options_.fs->CreateDir(tenant_dir));
  CAMBIUM_RETURN_IF_ERROR(SyncFailure(options_.fs->SyncDir(options_.data_dir)));
  const std::string content =
      absl::StrFormat("timeline %s/%s deleted at %s\n", key.tenant.ToString(),
                      key.timeline.ToString(), absl::FormatTime(absl::Now()));
  return DiskFullError(options_.id, tenant_dir, WriteFileAtomically(options_.fs, path, content));
}

absl::Status Safekeeper::RemoveTimelineDir(const TimelineKey& key) {
  FileSystem* fs = options_.fs;
  const std::string dir = TimelineDir(options_.data_dir, key.tenant, key.timeline);
  if (!fs->Exists(dir)) return absl::OkStatus();
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(dir));
  for (const std::string& name : names) {
    absl::Status removed = fs->Remove(dir + "/" + name);
    if (!removed.ok() && !absl::IsNotFound(removed)) return removed;
  }
  CAMBIUM_RETURN_IF_ERROR(fs->RemoveDir(dir));
  CAMBIUM_RETURN_IF_ERROR(fs->SyncDir(options_.data_dir + "/" + key.tenant.ToString()));
  LogInfo("timeline_removed",
          {{"tenant", key.tenant}, {"timeline", key.timeline}, {"files", names.size()}});
  return absl::OkStatus();
}

absl::Status Safekeeper::DeleteTimeline(const TimelineKey& key) {
  absl::MutexLock deleting(&delete_mu_);
  std::shared_ptr<Timeline> tl;
  {
    absl::MutexLock lock(&mu_);
    if (!deleted_.contains(key)) {
      // Durable before anything goes: a crash from here on finishes the deletion
      // at startup instead of leaving a timeline that lost some of its WAL.
      CAMBIUM_RETURN_IF_ERROR(WriteTombstone(key));
      deleted_.insert(key);
      LogInfo("timeline_deleted", {{"tenant", key.tenant}, {"timeline", key.timeline}});
    }
    auto it = timelines_.find(key);
    if (it != timelines_.end()) {
      tl = std::move(it->second);
      timelines_.erase(it);
    }
  }
  // Callers that still hold the timeline get FAILED_PRECONDITION from now on;
  // followers end their streams at once.
  if (tl != nullptr) tl->Delete();
  return RemoveTimelineDir(key);
}

void Safekeeper::CheckpointAll() {
  std::vector<std::pair<TimelineKey, std::shared_ptr<Timeline>>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, tl] : timelines_) all.emplace_back(key, tl);
  }
  for (auto& [key, tl] : all) {
    const absl::Status status = tl->Checkpoint();
    auto logged = checkpoint_errors_.find(key);
    if (status.ok()) {
      if (logged == checkpoint_errors_.end()) continue;
      LogInfo("checkpoint_recovered", {{"tenant", key.tenant}, {"timeline", key.timeline}});
      checkpoint_errors_.erase(logged);
      continue;
    }
    if (logged != checkpoint_errors_.end() && logged->second == status.ToString()) continue;
    LogError("checkpoint_failed",
             {{"tenant", key.tenant}, {"timeline", key.timeline}, {"error", status}});
    checkpoint_errors_[key] = status.ToString();
  }
}

void Safekeeper::Configure(const TimelineKey& key, Timeline& tl) {
  tl.SetMaxUnarchivedWal(options_.max_unarchived_wal);
  tl.SetPreallocationWanted([this, key] {
    absl::MutexLock lock(&wake_mu_);
    preallocation_wanted_.insert(key);
  });
}

void Safekeeper::Preallocate(const std::set<TimelineKey>& keys) {
  std::vector<std::shared_ptr<Timeline>> wanted;
  {
    absl::MutexLock lock(&mu_);
    for (const TimelineKey& key : keys) {
      if (auto it = timelines_.find(key); it != timelines_.end()) wanted.push_back(it->second);
    }
  }
  // A failure (a full disk) is the checkpoint's to report, which tries again; an
  // append that needs the segment creates it itself or reports why it cannot.
  for (const auto& tl : wanted) tl->Preallocate().IgnoreError();
}

void Safekeeper::StartMaintenance() {
  maintenance_ = std::thread([this] {
    absl::Time next_checkpoint = absl::Now() + options_.checkpoint_interval;
    for (;;) {
      std::set<TimelineKey> wanted;
      {
        absl::MutexLock lock(&wake_mu_);
        auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) {
          return stopping_ || !preallocation_wanted_.empty();
        };
        wake_mu_.AwaitWithDeadline(absl::Condition(&woken), next_checkpoint);
        if (stopping_) return;
        wanted.swap(preallocation_wanted_);
      }
      if (absl::Now() >= next_checkpoint) {
        CheckpointAll();  // preallocates too
        next_checkpoint = absl::Now() + options_.checkpoint_interval;
      } else {
        Preallocate(wanted);
      }
    }
  });
}

void Safekeeper::StopReaders() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, tl] : timelines_) {
    tl->Shutdown();
    // A timeline a caller still holds must not signal this object once it is gone.
    tl->SetPreallocationWanted(nullptr);
  }
}

void Safekeeper::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  StopReaders();
  {
    absl::MutexLock lock(&wake_mu_);
    stopping_ = true;
  }
  if (maintenance_.joinable()) maintenance_.join();
  CheckpointAll();
}

}  // namespace cambium::safekeeper
