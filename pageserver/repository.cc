#include "pageserver/repository.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "pageserver/keys.h"

namespace cambium::pageserver {

std::string Repository::TenantKey(const TenantId& tenant) {
  std::string key = "t|";
  tenant.AppendBytes(&key);
  return key;
}

// "skdel|" tenant(16) timeline(16): the timeline's safekeeper copies are to be deleted.
std::string Repository::SafekeeperDeletionKey(const TenantId& tenant, const TimelineId& timeline) {
  std::string key = "skdel|";
  tenant.AppendBytes(&key);
  timeline.AppendBytes(&key);
  return key;
}

std::vector<std::pair<TenantId, TimelineId>> Repository::PendingSafekeeperDeletions() const {
  std::vector<std::pair<TenantId, TimelineId>> out;
  auto it = store_->NewBoundedIterator(Family::kMeta, "skdel|", "skdel}");
  for (it->Seek("skdel|"); it->Valid(); it->Next()) {
    if (it->key().size() != 6 + 32) continue;
    out.emplace_back(TenantId::FromBytes(it->key().data() + 6),
                     TimelineId::FromBytes(it->key().data() + 22));
  }
  return out;
}

absl::Status Repository::SafekeeperDeletionDone(const TenantId& tenant,
                                                const TimelineId& timeline) {
  rocksdb::WriteBatch batch;
  batch.Delete(store_->cf(Family::kMeta), SafekeeperDeletionKey(tenant, timeline));
  return store_->Write(&batch, true);
}

std::string Repository::BranchKey(const TenantId& tenant, const std::string& name) {
  std::string key = "b|";
  tenant.AppendBytes(&key);
  key += name;
  return key;
}

// "x|" tenant(16) name "|" deleted-at (16 hex digits): a branch in the trash. A name
// may be trashed more than once; the time keeps the records apart and in order.
std::string Repository::TrashKey(const TenantId& tenant, const storage::v1::BranchRecord& branch) {
  std::string key = "x|";
  tenant.AppendBytes(&key);
  key += branch.name();
  key += absl::StrFormat("|%016x", static_cast<uint64_t>(branch.deleted_unix_micros()));
  return key;
}

absl::StatusOr<std::unique_ptr<Repository>> Repository::Open(PageStore* store,
                                                             RepositoryOptions options) {
  std::unique_ptr<Repository> repo(new Repository(store, options));
  CAMBIUM_RETURN_IF_ERROR(repo->Load());
  repo->ttl_thread_ = std::thread([r = repo.get()] { r->TtlLoop(); });
  return repo;
}

Repository::~Repository() {
  stopping_ = true;
  {
    std::lock_guard<std::mutex> lock(ttl_mu_);
    ttl_cv_.notify_all();
  }
  if (ttl_thread_.joinable()) ttl_thread_.join();
}

absl::Status Repository::Load() {
  std::lock_guard<std::mutex> lock(mu_);
  // Tenants that left (or are leaving) this pageserver are not loaded
  // (tenant_moves.cc); a purge of one that a crash interrupted is finished.
  CAMBIUM_RETURN_IF_ERROR(LoadMovesLocked());
  CAMBIUM_RETURN_IF_ERROR(LoadLocked(std::nullopt));
  for (const auto& [id, to] : moves_) {
    if (!to.empty()) CAMBIUM_RETURN_IF_ERROR(PurgeTenantDataLocked(id));
  }
  return absl::OkStatus();
}

absl::Status Repository::LoadLocked(const std::optional<TenantId>& only) {
  // Whether a record of `tenant` (its id at `offset` of the key) is loaded now.
  const auto wanted = [&](const std::string& key, size_t offset) {
    if (key.size() < offset + 16) return true;  // malformed: the parse below says so
    const TenantId tenant = TenantId::FromBytes(key.data() + offset);
    return only ? tenant == *only : !moves_.contains(tenant);
  };
  auto it = store_->NewBoundedIterator(Family::kMeta, "", "\xff");
  std::vector<storage::v1::TimelineRecord> timelines;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    const std::string value = it->value().ToString();
    if (key.rfind("t|", 0) == 0) {
      if (!wanted(key, 2)) continue;
      storage::v1::TenantRecord r;
      if (!r.ParseFromString(value) || r.id().size() != 16)
        return absl::DataLossError("malformed tenant record");
      Tenant& t = tenants_[TenantId::FromBytes(r.id().data())];
      t.id = TenantId::FromBytes(r.id().data());
      t.record = std::move(r);
    } else if (key.rfind("tl|", 0) == 0) {
      if (!wanted(key, 3)) continue;
      storage::v1::TimelineRecord r;
      if (!r.ParseFromString(value)) return absl::DataLossError("malformed timeline record");
      timelines.push_back(std::move(r));
    } else if (key.rfind("b|", 0) == 0) {
      if (!wanted(key, 2)) continue;
      storage::v1::BranchRecord r;
      if (!r.ParseFromString(value) || key.size() < 18)
        return absl::DataLossError("malformed branch record");
      tenants_[TenantId::FromBytes(key.data() + 2)].branches[r.name()] = std::move(r);
    } else if (key.rfind("x|", 0) == 0) {
      if (!wanted(key, 2)) continue;
      storage::v1::BranchRecord r;
      if (!r.ParseFromString(value) || key.size() < 18 || r.deleted_unix_micros() == 0)
        return absl::DataLossError("malformed trash record");
      tenants_[TenantId::FromBytes(key.data() + 2)].trash.push_back(std::move(r));  // key order
    }
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "load metadata"));
  // Load ancestors before descendants: repeat passes until every timeline is placed.
  size_t loaded = 0;
  std::vector<bool> done(timelines.size(), false);
  while (loaded < timelines.size()) {
    size_t before = loaded;
    for (size_t i = 0; i < timelines.size(); ++i) {
      if (done[i]) continue;
      const auto& r = timelines[i];
      std::shared_ptr<Timeline> ancestor;
      if (!r.ancestor_id().empty()) {
        auto a = timelines_.find(TimelineId::FromBytes(r.ancestor_id().data()));
        if (a == timelines_.end()) continue;
        ancestor = a->second;
      }
      CAMBIUM_ASSIGN_OR_RETURN(auto timeline,
                               Timeline::Load(store_, r, ancestor, options_.timeline));
      // The archive's persisted end is the timeline's last record LSN.
      if (!r.deleting()) {
        CAMBIUM_ASSIGN_OR_RETURN(Lsn end, archive_.End(*timeline));
        timeline->RaiseLastRecordLsn(end);
      }
      AddTimelineLocked(std::move(timeline));
      done[i] = true;
      ++loaded;
    }
    if (loaded == before)
      return absl::DataLossError("timeline records reference missing ancestors");
  }
  // Snapshots' timelines (live or in the trash) take no writer.
  for (const auto& [id, t] : tenants_) {
    auto freeze = [&](const storage::v1::BranchRecord& b) {
      auto tl = timelines_.find(TimelineId::FromBytes(b.timeline_id().data()));
      if (b.snapshot() && tl != timelines_.end()) tl->second->Freeze();
    };
    for (const auto& [name, b] : t.branches) freeze(b);
    for (const auto& b : t.trash) freeze(b);
  }
  // Finish deletions a crash interrupted.
  std::vector<TimelineId> deleting;
  for (const auto& [id, t] : timelines_) {
    if (t->record().deleting()) deleting.push_back(id);
  }
  for (const TimelineId& id : deleting) CAMBIUM_RETURN_IF_ERROR(DeleteTimelineLocked(id));
  LogInfo("repository_loaded", {{"tenants", tenants_.size()}, {"timelines", timelines_.size()}});
  return absl::OkStatus();
}

TenantInfo Repository::InfoOf(const Tenant& t) const {
  const uint64_t trash = t.record.trash_retention_seconds();
  return TenantInfo{t.record.name(), t.id, absl::Seconds(t.record.pitr_window_seconds()),
                    trash == 0 ? options_.default_trash_retention : absl::Seconds(trash)};
}

absl::StatusOr<Repository::Tenant*> Repository::FindTenantLocked(const std::string& tenant) {
  CAMBIUM_ASSIGN_OR_RETURN(const Tenant* t, std::as_const(*this).FindTenantLocked(tenant));
  return const_cast<Tenant*>(t);  // *this is not const: neither is the tenant
}

absl::StatusOr<const Repository::Tenant*> Repository::FindTenantLocked(
    const std::string& tenant) const {
  for (const auto& [id, t] : tenants_) {
    if (t.record.name() == tenant || id.ToString() == tenant) return &t;
  }
  return absl::NotFoundError(absl::StrFormat("tenant \"%s\" does not exist", tenant));
}

absl::StatusOr<storage::v1::BranchRecord*> Repository::FindBranchLocked(Tenant& tenant,
                                                                        const std::string& name) {
  auto it = tenant.branches.find(name);
  if (it == tenant.branches.end()) {
    const bool trashed = std::any_of(tenant.trash.begin(), tenant.trash.end(),
                                     [&](const auto& b) { return b.name() == name; });
    return absl::NotFoundError(absl::StrFormat(
        "branch \"%s\" does not exist in tenant \"%s\"%s", name, tenant.record.name(),
        trashed ? " (it is in the trash: `cambium branch undelete " + name + "` brings it back)"
                : ""));
  }
  return &it->second;
}

absl::StatusOr<TenantInfo> Repository::CreateTenant(const std::string& name,
                                                    absl::Duration pitr_window,
                                                    absl::Duration trash_retention) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("tenant", name));
  std::lock_guard<std::mutex> lock(mu_);
  if (FindTenantLocked(name).ok()) {
    return absl::AlreadyExistsError(absl::StrFormat("tenant \"%s\" already exists", name));
  }
  if (pitr_window <= absl::ZeroDuration()) pitr_window = options_.default_pitr_window;
  if (trash_retention <= absl::ZeroDuration()) trash_retention = options_.default_trash_retention;
  Tenant t;
  t.id = TenantId::Generate();
  std::string id_bytes;
  t.id.AppendBytes(&id_bytes);
  t.record.set_id(id_bytes);
  t.record.set_name(name);
  t.record.set_pitr_window_seconds(absl::ToInt64Seconds(pitr_window));
  t.record.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  t.record.set_trash_retention_seconds(absl::ToInt64Seconds(trash_retention));
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), TenantKey(t.id), t.record.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  TenantInfo info{name, t.id, pitr_window, trash_retention};
  tenants_[t.id] = std::move(t);
  LogInfo("tenant_created", {{"tenant", name}, {"tenant_id", info.id}});
  return info;
}

std::vector<TenantInfo> Repository::ListTenants() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TenantInfo> out;
  for (const auto& [id, t] : tenants_) {
    out.push_back(InfoOf(t));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<TenantInfo> Repository::GetTenant(const std::string& tenant) const {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(const Tenant* t, FindTenantLocked(tenant));
  return InfoOf(*t);
}

absl::Status Repository::DeleteTenant(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  for (const auto& [name, b] : t->branches) {
    if (b.protected_()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "tenant \"%s\" has protected branch \"%s\"; unprotect it first", tenant, name));
    }
  }
  std::vector<TimelineId> ids;
  for (const auto& [id, tl] : timelines_) {
    if (tl->tenant_id() != t->id) continue;
    if (WriterLiveLocked(*tl)) {
      return absl::FailedPreconditionError(
          absl::StrFormat("tenant \"%s\" has a running endpoint (%s); stop it first", tenant,
                          tl->record().writer()));
    }
    ids.push_back(id);
  }
  // Children before ancestors.
  while (!ids.empty()) {
    size_t before = ids.size();
    for (auto it = ids.begin(); it != ids.end();) {
      if (ChildrenLocked(*it).empty()) {
        CAMBIUM_RETURN_IF_ERROR(DeleteTimelineLocked(*it));
        it = ids.erase(it);
      } else {
        ++it;
      }
    }
    if (ids.size() == before) return absl::InternalError("timeline ancestry has a cycle");
  }
  rocksdb::WriteBatch batch;
  for (const auto& [name, b] : t->branches)
    batch.Delete(store_->cf(Family::kMeta), BranchKey(t->id, name));
  for (const auto& b : t->trash) batch.Delete(store_->cf(Family::kMeta), TrashKey(t->id, b));
  batch.Delete(store_->cf(Family::kMeta), TenantKey(t->id));
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  LogInfo("tenant_deleted", {{"tenant", t->record.name()}});
  tenants_.erase(t->id);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Timeline>> Repository::GetTimeline(
    const TenantId& tenant, const TimelineId& timeline) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = timelines_.find(timeline);
  if (it == timelines_.end() || it->second->tenant_id() != tenant) {
    if (auto moved = moves_.find(tenant); moved != moves_.end()) {
      return moved->second.empty() ? TenantMovingStatus(tenant)
                                   : TenantMovedStatus(tenant, moved->second);
    }
    return absl::NotFoundError(absl::StrFormat("timeline %s does not exist in tenant %s",
                                               timeline.ToString(), tenant.ToString()));
  }
  return it->second;
}

std::vector<std::shared_ptr<Timeline>> Repository::AllTimelines() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<Timeline>> all;
  for (const auto& [id, t] : timelines_) all.push_back(t);
  return all;
}

void Repository::AddTimelineLocked(std::shared_ptr<Timeline> timeline) {
  if (timeline->ancestor()) children_[timeline->ancestor()->id()].insert(timeline->id());
  timelines_[timeline->id()] = std::move(timeline);
}

std::vector<std::shared_ptr<Timeline>> Repository::ChildrenLocked(const TimelineId& id) const {
  std::vector<std::shared_ptr<Timeline>> children;
  auto it = children_.find(id);
  if (it == children_.end()) return children;
  for (const TimelineId& cid : it->second) {
    auto t = timelines_.find(cid);
    if (t != timelines_.end()) children.push_back(t->second);
  }
  return children;
}

bool Repository::WriterLiveLocked(const Timeline& timeline) const {
  return timeline.WriterActiveWithin(options_.writer_lease);
}

absl::Status Repository::DeleteTimelineLocked(const TimelineId& id) {
  auto it = timelines_.find(id);
  if (it == timelines_.end()) return absl::OkStatus();
  std::shared_ptr<Timeline> t = it->second;
  // No holder of `t` (a WAL receiver, a writer's stream, GC) writes it from now on.
  t->MarkDeleted();
  // Mark first so that a crash in the middle is finished at the next start.
  storage::v1::TimelineRecord r = t->record();
  if (!r.deleting()) {
    r.set_deleting(true);
    rocksdb::WriteBatch mark;
    mark.Put(store_->cf(Family::kMeta), Timeline::RecordKey(t->tenant_id(), id),
             r.SerializeAsString());
    // Its WAL on the safekeepers goes too (the WAL receiver does it, with retries).
    if (r.generation() > 0) {
      mark.Put(store_->cf(Family::kMeta), SafekeeperDeletionKey(t->tenant_id(), id), "");
    }
    CAMBIUM_RETURN_IF_ERROR(store_->Write(&mark, true));
  }
  CAMBIUM_RETURN_IF_ERROR(
      store_->DeleteTimelineData(id, {Timeline::RecordKey(t->tenant_id(), id),
                                      WalArchive::StateKey(*t), t->WriteStateKey(), t->SealKey()}));
  archive_.ForgetTimeline(id);
  ForgetSizes(id);
  if (t->ancestor()) {
    auto parent = children_.find(t->ancestor()->id());
    if (parent != children_.end()) parent->second.erase(id);
  }
  children_.erase(id);
  timelines_.erase(id);
  LogInfo("timeline_deleted", {{"timeline", id}});
  return absl::OkStatus();
}

bool Repository::TimelineReferencedLocked(const TimelineId& id) const {
  if (!ChildrenLocked(id).empty()) return true;
  auto tl = timelines_.find(id);
  if (tl != timelines_.end() && WriterLiveLocked(*tl->second)) return true;
  for (const auto& [tid, t] : tenants_) {
    for (const auto& [name, b] : t.branches) {
      if (TimelineId::FromBytes(b.timeline_id().data()) == id) return true;
    }
    for (const auto& b : t.trash) {
      if (TimelineId::FromBytes(b.timeline_id().data()) == id) return true;
    }
  }
  return false;
}

absl::Status Repository::DeleteUnreferencedLocked(const TimelineId& id) {
  auto it = timelines_.find(id);
  if (it == timelines_.end()) return absl::OkStatus();
  std::shared_ptr<Timeline> ancestor = it->second->ancestor();
  CAMBIUM_RETURN_IF_ERROR(DeleteTimelineLocked(id));
  // An ancestor left behind by a reset (kept for its children) goes with its last one.
  while (ancestor && !TimelineReferencedLocked(ancestor->id())) {
    std::shared_ptr<Timeline> next = ancestor->ancestor();
    CAMBIUM_RETURN_IF_ERROR(DeleteTimelineLocked(ancestor->id()));
    ancestor = std::move(next);
  }
  return absl::OkStatus();
}

void Repository::TtlLoop() {
  std::unique_lock<std::mutex> lock(ttl_mu_);
  while (!stopping_) {
    ttl_cv_.wait_for(lock, absl::ToChronoMilliseconds(options_.ttl_check_interval));
    if (stopping_) break;
    lock.unlock();
    DeleteExpiredBranches(absl::Now());
    PurgeExpiredTrash(absl::Now());
    lock.lock();
  }
}

}  // namespace cambium::pageserver
