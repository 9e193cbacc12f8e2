#include "safekeeper/safekeeper.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"

namespace cambium::safekeeper {

absl::StatusOr<std::unique_ptr<Safekeeper>> Safekeeper::Open(const SafekeeperOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir is required");
  SafekeeperOptions opts = options;
  if (opts.fs == nullptr) opts.fs = FileSystem::Default();
  CAMBIUM_RETURN_IF_ERROR(opts.fs->CreateDir(opts.data_dir));
  std::unique_ptr<Safekeeper> sk(new Safekeeper(std::move(opts)));
  CAMBIUM_RETURN_IF_ERROR(sk->LoadTimelines());
  return sk;
}

absl::Status Safekeeper::LoadTimelines() {
  FileSystem* fs = options_.fs;
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> tenants, fs->ListDir(options_.data_dir));
  absl::MutexLock lock(&mu_);
  for (const std::string& tenant_name : tenants) {
    absl::StatusOr<TenantId> tenant = TenantId::Parse(tenant_name);
    if (!tenant.ok()) continue;  // not a tenant directory
    const std::string tenant_dir = options_.data_dir + "/" + tenant_name;
    CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs->ListDir(tenant_dir));
    for (const std::string& name : names) {
      absl::StatusOr<TimelineId> timeline = TimelineId::Parse(name);
      if (!timeline.ok()) continue;
      const std::string dir = tenant_dir + "/" + name;
      if (!fs->Exists(dir + "/" + kControlFileName)) {
        // Creation crashed before its control file landed: nothing was promised.
        LogWarning("timeline_without_control_file", {{"dir", dir}});
        continue;
      }
      CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<Timeline> tl,
                               Timeline::Open(fs, dir, options_.id, options_.segment_size));
      timelines_[TimelineKey{*tenant, *timeline}] = std::move(tl);
    }
  }
  LogInfo("safekeeper_opened",
          {{"id", options_.id}, {"data_dir", options_.data_dir}, {"timelines", timelines_.size()}});
  return absl::OkStatus();
}

Safekeeper::~Safekeeper() { Shutdown(); }

absl::StatusOr<Timeline*> Safekeeper::Get(const TimelineKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = timelines_.find(key);
  if (it == timelines_.end()) {
    return absl::NotFoundError(absl::StrFormat("safekeeper %s has no timeline %s/%s", options_.id,
                                               key.tenant.ToString(), key.timeline.ToString()));
  }
  return it->second.get();
}

absl::StatusOr<Timeline*> Safekeeper::GetOrCreate(const TimelineKey& key, Lsn timeline_start) {
  absl::MutexLock lock(&mu_);
  auto it = timelines_.find(key);
  if (it != timelines_.end()) return it->second.get();
  if (!timeline_start.valid()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timeline %s/%s is new on safekeeper %s and the request has no timeline start LSN",
        key.tenant.ToString(), key.timeline.ToString(), options_.id));
  }
  const std::string tenant_dir = options_.data_dir + "/" + key.tenant.ToString();
  CAMBIUM_RETURN_IF_ERROR(options_.fs->CreateDir(tenant_dir));
  CAMBIUM_RETURN_IF_ERROR(options_.fs->SyncDir(options_.data_dir));
  CAMBIUM_ASSIGN_OR_RETURN(
      std::unique_ptr<Timeline> tl,
      Timeline::Create(options_.fs, TimelineDir(options_.data_dir, key.tenant, key.timeline),
                       options_.id, key.tenant, key.timeline, timeline_start,
                       options_.segment_size));
  Timeline* raw = tl.get();
  timelines_[key] = std::move(tl);
  return raw;
}

void Safekeeper::CheckpointAll() {
  std::vector<Timeline*> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, tl] : timelines_) all.push_back(tl.get());
  }
  for (Timeline* tl : all) {
    absl::Status status = tl->Checkpoint();
    if (!status.ok()) {
      LogError("checkpoint_failed",
               {{"tenant", tl->tenant()}, {"timeline", tl->timeline()}, {"error", status}});
    }
  }
}

void Safekeeper::StartMaintenance() {
  maintenance_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(options_.checkpoint_interval)) CheckpointAll();
  });
}

void Safekeeper::StopReaders() {
  absl::MutexLock lock(&mu_);
  for (auto& [key, tl] : timelines_) tl->Shutdown();
}

void Safekeeper::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  StopReaders();
  stop_.Notify();
  if (maintenance_.joinable()) maintenance_.join();
  CheckpointAll();
}

}  // namespace cambium::safekeeper
