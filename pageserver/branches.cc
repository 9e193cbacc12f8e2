// Repository: branch operations. Each is a metadata change in one synced batch.
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "common/status.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

std::string IdBytes(const TimelineId& id) {
  std::string b;
  id.AppendBytes(&b);
  return b;
}

absl::Status Protected(const storage::v1::BranchRecord& b, const std::string& action) {
  if (b.snapshot()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("\"%s\" is a snapshot: it is immutable and cannot be %s; make a branch "
                        "from it instead",
                        b.name(), action));
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "branch \"%s\" is protected and cannot be %s; unprotect it first", b.name(), action));
}

}  // namespace

BranchInfo Repository::ToInfoLocked(const Tenant& tenant, const storage::v1::BranchRecord& b) {
  BranchInfo info;
  info.tenant = tenant.record.name();
  info.tenant_id = tenant.id;
  info.name = b.name();
  info.timeline_id = TimelineId::FromBytes(b.timeline_id().data());
  info.parent = b.parent();
  info.created = absl::FromUnixMicros(b.created_unix_micros());
  info.is_protected = b.protected_();
  info.read_only_copy = b.read_only_copy();
  info.snapshot = b.snapshot();
  info.masking = b.masking();
  if (b.expires_unix_micros() != 0) info.expires = absl::FromUnixMicros(b.expires_unix_micros());
  if (b.deleted_unix_micros() != 0) {
    info.deleted = absl::FromUnixMicros(b.deleted_unix_micros());
    info.purge_after = absl::FromUnixMicros(b.purge_after_unix_micros());
  }
  auto it = timelines_.find(info.timeline_id);
  if (it != timelines_.end()) {
    const Timeline& t = *it->second;
    if (t.ancestor()) info.ancestor_timeline = t.ancestor()->id();
    info.ancestor_lsn = t.ancestor_lsn();
    info.last_record_lsn = t.last_record_lsn();
    info.history_floor = t.history_floor_lsn();
  }
  return info;
}

absl::StatusOr<std::shared_ptr<Timeline>> Repository::NewChildTimelineLocked(
    const std::shared_ptr<Timeline>& parent, Lsn lsn, rocksdb::WriteBatch* batch) {
  storage::v1::TimelineRecord r;
  std::string tenant_bytes;
  parent->tenant_id().AppendBytes(&tenant_bytes);
  r.set_tenant_id(tenant_bytes);
  r.set_timeline_id(IdBytes(TimelineId::Generate()));
  r.set_ancestor_id(IdBytes(parent->id()));
  r.set_ancestor_lsn(lsn.value());
  r.set_last_record_lsn(lsn.value());
  r.set_wal_start_lsn(lsn.value());
  r.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  // A masked past stays unreadable through every descendant.
  r.set_history_floor_lsn(parent->history_floor_lsn().value());
  CAMBIUM_ASSIGN_OR_RETURN(auto child, Timeline::Load(store_, r, parent, options_.timeline));
  batch->Put(store_->cf(Family::kMeta), Timeline::RecordKey(child->tenant_id(), child->id()),
             r.SerializeAsString());
  archive_.InitTimeline(*child, lsn, batch);
  return child;
}

absl::StatusOr<std::shared_ptr<Timeline>> Repository::CreateRootTimeline(const std::string& tenant,
                                                                         const std::string& branch,
                                                                         Lsn wal_start) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", branch));
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  if (t->branches.count(branch)) {
    return absl::AlreadyExistsError(
        absl::StrFormat("branch \"%s\" already exists in tenant \"%s\"", branch, tenant));
  }
  storage::v1::TimelineRecord r;
  r.set_tenant_id(t->record.id());
  r.set_timeline_id(IdBytes(TimelineId::Generate()));
  r.set_last_record_lsn(wal_start.value());
  r.set_wal_start_lsn(wal_start.value());
  r.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  CAMBIUM_ASSIGN_OR_RETURN(auto timeline, Timeline::Load(store_, r, nullptr, options_.timeline));
  storage::v1::BranchRecord b;
  b.set_name(branch);
  b.set_timeline_id(r.timeline_id());
  b.set_created_unix_micros(r.created_unix_micros());
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), Timeline::RecordKey(t->id, timeline->id()),
            r.SerializeAsString());
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, branch), b.SerializeAsString());
  archive_.InitTimeline(*timeline, wal_start, &batch);
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  AddTimelineLocked(timeline);
  t->branches[branch] = b;
  return timeline;
}

absl::StatusOr<Lsn> Repository::ResolvePointLocked(const Timeline& timeline,
                                                   const BranchPoint& point) {
  Lsn lsn = timeline.last_record_lsn();
  if (point.time.has_value()) {
    CAMBIUM_ASSIGN_OR_RETURN(LsnLookup found, archive_.LsnByTimestamp(timeline, *point.time));
    switch (found.kind) {
      case LsnLookupKind::kPresent:
        lsn = found.lsn;
        break;
      case LsnLookupKind::kFuture:
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s is in the future",
            absl::FormatTime(absl::RFC3339_full, *point.time, absl::UTCTimeZone())));
      case LsnLookupKind::kBeforeRetention:
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s is before the retention window (the earliest restorable point is %s)",
            absl::FormatTime(absl::RFC3339_full, *point.time, absl::UTCTimeZone()),
            std::max(found.lsn, timeline.gc_cutoff_lsn()).ToString()));
      case LsnLookupKind::kNoData:
        return absl::FailedPreconditionError(
            "no transaction has committed on this branch yet; use an LSN instead of a time");
    }
  } else if (point.lsn.has_value()) {
    if (*point.lsn > timeline.last_record_lsn()) {
      return absl::OutOfRangeError(
          absl::StrFormat("LSN %s is beyond the last record LSN %s of the branch",
                          point.lsn->ToString(), timeline.last_record_lsn().ToString()));
    }
    CAMBIUM_ASSIGN_OR_RETURN(lsn, archive_.RoundDownToRecordBoundary(timeline, *point.lsn));
  }
  if (lsn < timeline.history_floor_lsn()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s is before this branch's history begins at %s (its data was masked there; "
        "nothing earlier is readable through it)",
        point.time ? absl::FormatTime(absl::RFC3339_full, *point.time, absl::UTCTimeZone())
                   : lsn.ToString(),
        timeline.history_floor_lsn().ToString()));
  }
  // The LSN lies in the history of the first timeline of the chain whose own WAL
  // starts at or below it; that timeline's GC cutoff applies.
  const Timeline* owner = &timeline;
  while (owner->ancestor() && lsn < owner->ancestor_lsn()) owner = owner->ancestor().get();
  if (!owner->ancestor()) {
    // A root's archive starts with the WAL of its import (initdb's commits, say); the
    // first state a compute can start from is the import itself.
    CAMBIUM_ASSIGN_OR_RETURN(Lsn first, archive_.FirstBoundary(*owner));
    if (lsn < first) {
      const absl::Time imported = absl::FromUnixMicros(owner->record().created_unix_micros());
      if (!point.time.has_value() || *point.time < imported) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s is before the earliest point this branch can start at: its import at %s "
            "(LSN %s)",
            point.time ? absl::FormatTime(absl::RFC3339_full, *point.time, absl::UTCTimeZone())
                       : lsn.ToString(),
            absl::FormatTime(absl::RFC3339_full, imported, absl::UTCTimeZone()), first.ToString()));
      }
      lsn = first;  // no commit between the import and the requested time
    }
  }
  if (lsn < owner->gc_cutoff_lsn()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("LSN %s is below the GC cutoff %s (outside the PITR window)",
                        lsn.ToString(), owner->gc_cutoff_lsn().ToString()));
  }
  return lsn;
}

absl::StatusOr<std::shared_ptr<Timeline>> Repository::BranchTimelineLocked(
    Tenant& tenant, const std::string& name) {
  CAMBIUM_ASSIGN_OR_RETURN(auto* branch, FindBranchLocked(tenant, name));
  auto it = timelines_.find(TimelineId::FromBytes(branch->timeline_id().data()));
  if (it == timelines_.end()) {
    return absl::InternalError(absl::StrFormat("branch \"%s\" points to a missing timeline", name));
  }
  return it->second;
}

absl::StatusOr<std::pair<std::shared_ptr<Timeline>, Lsn>> Repository::ResolveBranchHead(
    const std::string& tenant, const std::string& branch) {
  std::shared_ptr<Timeline> timeline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(timeline, BranchTimelineLocked(*t, branch));
  }
  if (head_source_ == nullptr) return std::make_pair(timeline, timeline->last_record_lsn());
  // Not under mu_: it may wait for the safekeepers and the archive.
  CAMBIUM_ASSIGN_OR_RETURN(Lsn head, head_source_->ResolveHead(timeline));
  return std::make_pair(timeline, head);
}

absl::StatusOr<Repository::Head> Repository::GetHead(const std::string& tenant,
                                                     const std::string& branch) {
  CAMBIUM_ASSIGN_OR_RETURN(auto head, ResolveBranchHead(tenant, branch));
  return Head{.lsn = head.second, .archived = head.first->last_record_lsn()};
}

absl::StatusOr<bool> Repository::ReleaseWriter(const std::string& tenant, const std::string& branch,
                                               const std::string& writer) {
  std::shared_ptr<Timeline> timeline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(timeline, BranchTimelineLocked(*t, branch));
  }
  CAMBIUM_ASSIGN_OR_RETURN(bool released, timeline->Release(writer));
  if (released) {
    LogInfo(
        "writer_released",
        {{"tenant", tenant}, {"branch", branch}, {"timeline", timeline->id()}, {"writer", writer}});
  }
  return released;
}

absl::StatusOr<BranchInfo> Repository::CreateBranch(
    const std::string& tenant, const std::string& name, const std::string& parent,
    const BranchPoint& point, std::optional<absl::Duration> ttl, BranchKind kind) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", name));
  // "Head" is the exact head (every acknowledged commit), resolved before mu_.
  BranchPoint resolved = point;
  std::shared_ptr<Timeline> resolved_on;
  if (!point.lsn.has_value() && !point.time.has_value()) {
    CAMBIUM_ASSIGN_OR_RETURN(auto head, ResolveBranchHead(tenant, parent));
    resolved_on = head.first;
    resolved.lsn = head.second;
  }
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  if (t->branches.count(name)) {
    return absl::AlreadyExistsError(
        absl::StrFormat("branch \"%s\" already exists in tenant \"%s\"", name, tenant));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto* parent_record, FindBranchLocked(*t, parent));
  if (parent_record->masking()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "branch \"%s\" is being masked: nothing is branched from it until that is done", parent));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto parent_timeline, BranchTimelineLocked(*t, parent));
  if (resolved_on && resolved_on != parent_timeline) {
    return absl::AbortedError(absl::StrFormat(
        "branch \"%s\" was reset or restored while its head was resolved; retry", parent));
  }
  CAMBIUM_ASSIGN_OR_RETURN(Lsn lsn, ResolvePointLocked(*parent_timeline, resolved));
  rocksdb::WriteBatch batch;
  CAMBIUM_ASSIGN_OR_RETURN(auto child, NewChildTimelineLocked(parent_timeline, lsn, &batch));
  storage::v1::BranchRecord b;
  b.set_name(name);
  b.set_timeline_id(IdBytes(child->id()));
  b.set_parent(parent);
  b.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  b.set_read_only_copy(kind == BranchKind::kReadOnlyCopy);
  // A snapshot is protected from its first write on: nothing may reset, restore or
  // delete it as a branch, and SetProtection keeps it so.
  b.set_snapshot(kind == BranchKind::kSnapshot);
  b.set_protected_(kind == BranchKind::kSnapshot);
  b.set_masking(kind == BranchKind::kMasked);
  if (kind == BranchKind::kSnapshot) child->Freeze();
  if (ttl.has_value() && *ttl > absl::ZeroDuration()) {
    b.set_expires_unix_micros(absl::ToUnixMicros(absl::Now() + *ttl));
  }
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), b.SerializeAsString());
  // The parent's history at lsn is frozen from this write on (branch point rule).
  CAMBIUM_RETURN_IF_ERROR(parent_timeline->WriteSealed(lsn, &batch));
  AddTimelineLocked(child);
  t->branches[name] = b;
  LogInfo("branch_created", {{"tenant", tenant},
                             {"branch", name},
                             {"parent", parent},
                             {"lsn", lsn},
                             {"timeline", child->id()}});
  return ToInfoLocked(*t, b);
}

absl::StatusOr<BranchInfo> Repository::GetBranch(const std::string& tenant,
                                                 const std::string& name) {
  BranchInfo info;
  SizeInputs inputs;
  absl::Duration pitr_window;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
    info = ToInfoLocked(*t, *b);
    inputs = SizeInputsLocked(info.timeline_id);
    pitr_window = absl::Seconds(t->record.pitr_window_seconds());
  }
  // Both read the store: not under mu_.
  FillSizes(&info, inputs);
  FillRestorable(&info, inputs.timeline.get(), pitr_window);
  return info;
}

absl::StatusOr<BranchInfo> Repository::DescribeBranch(const std::string& tenant,
                                                      const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  return ToInfoLocked(*t, *b);
}

absl::StatusOr<std::vector<BranchInfo>> Repository::ListBranches(const std::string& tenant) {
  std::vector<BranchInfo> out;
  std::vector<SizeInputs> inputs;
  absl::Duration pitr_window;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    pitr_window = absl::Seconds(t->record.pitr_window_seconds());
    for (const auto& [name, b] : t->branches) {
      out.push_back(ToInfoLocked(*t, b));
      inputs.push_back(SizeInputsLocked(out.back().timeline_id));
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    FillSizes(&out[i], inputs[i]);
    FillRestorable(&out[i], inputs[i].timeline.get(), pitr_window);
  }
  return out;
}

std::vector<std::string> Repository::ChildBranchNamesLocked(const Tenant& tenant,
                                                            const TimelineId& id) const {
  std::vector<std::string> names;
  for (const auto& c : ChildrenLocked(id)) {
    std::string n = "(unnamed timeline " + c->id().ToString() + ")";
    for (const auto& [bn, br] : tenant.branches) {
      if (TimelineId::FromBytes(br.timeline_id().data()) == c->id()) n = bn;
    }
    for (const auto& br : tenant.trash) {
      if (TimelineId::FromBytes(br.timeline_id().data()) == c->id()) n = br.name() + " (trash)";
    }
    names.push_back(n);
  }
  return names;
}

absl::Status Repository::DeleteBranch(const std::string& tenant, const std::string& name,
                                      bool purge, absl::Time* purge_after) {
  return DeleteBranchAt(tenant, name, purge, absl::Now(), purge_after);
}

absl::Status Repository::DeleteSnapshot(const std::string& tenant, const std::string& name,
                                        bool purge, absl::Time* purge_after) {
  return DeleteBranchAt(tenant, name, purge, absl::Now(), purge_after, /*snapshot=*/true);
}

absl::Status Repository::RequireNotMasking(const std::string& tenant, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (b->masking()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "branch \"%s\" is being masked: its credentials come once that is done", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<BranchInfo> Repository::CompleteMasking(const std::string& tenant,
                                                       const std::string& name) {
  // The exact head (every acknowledged write of the masking session), without mu_.
  CAMBIUM_ASSIGN_OR_RETURN(auto head, ResolveBranchHead(tenant, name));
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (!b->masking()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" is not being masked", name));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto timeline, BranchTimelineLocked(*t, name));
  if (timeline != head.first) {
    return absl::AbortedError(absl::StrFormat("branch \"%s\" moved while masked; retry", name));
  }
  // The floor first: should the mark's write fail, the branch stays unusable (and
  // is deleted), never readable below its masking.
  CAMBIUM_RETURN_IF_ERROR(timeline->SetHistoryFloor(head.second));
  storage::v1::BranchRecord updated = *b;
  updated.set_masking(false);
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), updated.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  *b = updated;
  LogInfo("branch_masked", {{"tenant", tenant}, {"branch", name}, {"floor", head.second}});
  return ToInfoLocked(*t, *b);
}

absl::Status Repository::DeleteBranchAt(const std::string& tenant, const std::string& name,
                                        bool purge, absl::Time now, absl::Time* purge_after,
                                        bool snapshot) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  if (purge && !t->branches.count(name)) {
    // Purging from the trash: every trashed branch of that name.
    bool found = false;
    for (size_t i = t->trash.size(); i-- > 0;) {
      if (t->trash[i].name() != name || t->trash[i].snapshot() != snapshot) continue;
      found = true;
      CAMBIUM_RETURN_IF_ERROR(PurgeTrashEntryLocked(*t, i));
    }
    if (found) LogInfo("branch_purged", {{"tenant", tenant}, {"branch", name}});
    return found ? absl::OkStatus() : FindBranchLocked(*t, name).status();
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (b->snapshot() && !snapshot) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "\"%s\" is a snapshot; delete it as one (cambium snapshot delete %s)", name, name));
  }
  if (!b->snapshot() && snapshot) {
    return absl::NotFoundError(absl::StrFormat("\"%s\" is a branch, not a snapshot", name));
  }
  if (b->protected_() && !snapshot) return Protected(*b, "deleted");
  const TimelineId id = TimelineId::FromBytes(b->timeline_id().data());
  // Children read the branch's timeline: they go first (also to the trash), so a
  // trashed branch never has children and always purges.
  if (std::vector<std::string> children = ChildBranchNamesLocked(*t, id); !children.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" has child branches (%s); delete them first", name,
                        absl::StrJoin(children, ", ")));
  }
  auto tl = timelines_.find(id);
  if (tl != timelines_.end() && WriterLiveLocked(*tl->second)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" has a running endpoint (%s); stop it first", name,
                        tl->second->record().writer()));
  }
  rocksdb::WriteBatch batch;
  batch.Delete(store_->cf(Family::kMeta), BranchKey(t->id, name));
  if (!purge) {
    // To the trash: the timeline stays as it is (GC keeps applying the PITR window).
    storage::v1::BranchRecord trashed = *b;
    trashed.set_deleted_unix_micros(absl::ToUnixMicros(now));
    trashed.set_purge_after_unix_micros(absl::ToUnixMicros(now + InfoOf(*t).trash_retention));
    batch.Put(store_->cf(Family::kMeta), TrashKey(t->id, trashed), trashed.SerializeAsString());
    CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
    t->branches.erase(name);
    if (purge_after) *purge_after = absl::FromUnixMicros(trashed.purge_after_unix_micros());
    t->trash.push_back(std::move(trashed));
    LogInfo("branch_trashed", {{"tenant", tenant}, {"branch", name}, {"timeline", id}});
    return absl::OkStatus();
  }
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  t->branches.erase(name);
  CAMBIUM_RETURN_IF_ERROR(DeleteUnreferencedLocked(id));
  LogInfo("branch_deleted", {{"tenant", tenant}, {"branch", name}});
  return absl::OkStatus();
}

absl::Status Repository::PurgeTrashEntryLocked(Tenant& tenant, size_t index) {
  const storage::v1::BranchRecord entry = tenant.trash[index];
  const TimelineId id = TimelineId::FromBytes(entry.timeline_id().data());
  if (std::vector<std::string> children = ChildBranchNamesLocked(tenant, id); !children.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("trashed branch \"%s\" has child branches (%s); delete them first",
                        entry.name(), absl::StrJoin(children, ", ")));
  }
  rocksdb::WriteBatch batch;
  batch.Delete(store_->cf(Family::kMeta), TrashKey(tenant.id, entry));
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  tenant.trash.erase(tenant.trash.begin() + static_cast<std::ptrdiff_t>(index));
  return DeleteUnreferencedLocked(id);
}

absl::StatusOr<BranchInfo> Repository::UndeleteBranch(const std::string& tenant,
                                                      const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  if (t->branches.count(name)) {
    return absl::AlreadyExistsError(absl::StrFormat(
        "a branch \"%s\" exists; delete it first to bring back the one in the trash", name));
  }
  size_t index = t->trash.size();
  for (size_t i = 0; i < t->trash.size(); ++i) {
    if (t->trash[i].name() == name) index = i;  // the newest of that name
  }
  if (index == t->trash.size()) {
    return absl::NotFoundError(absl::StrFormat(
        "no branch \"%s\" in the trash of tenant \"%s\" (`cambium branch list --deleted`)", name,
        tenant));
  }
  const storage::v1::BranchRecord entry = t->trash[index];
  if (!timelines_.count(TimelineId::FromBytes(entry.timeline_id().data()))) {
    return absl::InternalError(
        absl::StrFormat("trashed branch \"%s\" points to a missing timeline", name));
  }
  storage::v1::BranchRecord restored = entry;
  restored.clear_deleted_unix_micros();
  restored.clear_purge_after_unix_micros();
  // A branch its TTL sent to the trash would go again at once.
  const absl::Time deleted = absl::FromUnixMicros(entry.deleted_unix_micros());
  const bool ttl_passed =
      restored.expires_unix_micros() != 0 &&
      absl::FromUnixMicros(restored.expires_unix_micros()) <= std::max(deleted, absl::Now());
  if (ttl_passed) restored.set_expires_unix_micros(0);
  rocksdb::WriteBatch batch;
  batch.Delete(store_->cf(Family::kMeta), TrashKey(t->id, entry));
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), restored.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  t->trash.erase(t->trash.begin() + static_cast<std::ptrdiff_t>(index));
  t->branches[name] = restored;
  LogInfo("branch_undeleted", {{"tenant", tenant}, {"branch", name}, {"ttl_cleared", ttl_passed}});
  return ToInfoLocked(*t, restored);
}

absl::StatusOr<std::vector<BranchInfo>> Repository::ListDeletedBranches(const std::string& tenant) {
  std::vector<BranchInfo> out;
  std::vector<SizeInputs> inputs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    for (const auto& b : t->trash) {
      out.push_back(ToInfoLocked(*t, b));
      inputs.push_back(SizeInputsLocked(out.back().timeline_id));
    }
  }
  for (size_t i = 0; i < out.size(); ++i) FillSizes(&out[i], inputs[i]);
  return out;
}

int Repository::PurgeExpiredTrash(absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  int purged = 0;
  for (auto& [tid, t] : tenants_) {
    for (size_t i = t.trash.size(); i-- > 0;) {
      const storage::v1::BranchRecord& b = t.trash[i];
      if (absl::FromUnixMicros(b.purge_after_unix_micros()) > now) continue;
      const std::string name = b.name();
      absl::Status s = PurgeTrashEntryLocked(t, i);
      if (s.ok()) {
        ++purged;
        LogInfo("branch_purged", {{"tenant", t.record.name()}, {"branch", name}});
      } else {
        LogDebug("branch_purge_deferred",
                 {{"tenant", t.record.name()}, {"branch", name}, {"reason", s}});
      }
    }
  }
  return purged;
}

absl::StatusOr<BranchInfo> Repository::ResetBranch(const std::string& tenant,
                                                   const std::string& name) {
  std::string parent_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
    parent_name = b->parent();
  }
  if (parent_name.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" has no parent branch to reset to", name));
  }
  // The parent's exact head, resolved before mu_ (it may wait).
  auto head = ResolveBranchHead(tenant, parent_name);
  if (absl::IsNotFound(head.status())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "branch \"%s\" has no parent branch to reset to (%s was deleted)", name, parent_name));
  }
  CAMBIUM_RETURN_IF_ERROR(head.status());
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (b->protected_()) return Protected(*b, "reset");
  const TimelineId old_id = TimelineId::FromBytes(b->timeline_id().data());
  auto old = timelines_.find(old_id);
  if (old != timelines_.end() && WriterLiveLocked(*old->second)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" has a running endpoint; stop it first", name));
  }
  auto parent = BranchTimelineLocked(*t, parent_name);
  if (!parent.ok() || *parent != head->first || b->parent() != parent_name) {
    return absl::AbortedError(absl::StrFormat(
        "branch \"%s\" or its parent changed while the parent's head was resolved; retry", name));
  }
  rocksdb::WriteBatch batch;
  CAMBIUM_ASSIGN_OR_RETURN(auto child, NewChildTimelineLocked(*parent, head->second, &batch));
  storage::v1::BranchRecord updated = *b;
  updated.set_timeline_id(IdBytes(child->id()));
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), updated.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR((*parent)->WriteSealed(head->second, &batch));
  AddTimelineLocked(child);
  *b = updated;
  // The old timeline goes unless something still depends on it.
  if (ChildrenLocked(old_id).empty()) CAMBIUM_RETURN_IF_ERROR(DeleteTimelineLocked(old_id));
  LogInfo("branch_reset", {{"tenant", tenant}, {"branch", name}, {"lsn", child->ancestor_lsn()}});
  return ToInfoLocked(*t, *b);
}

absl::StatusOr<std::pair<BranchInfo, BranchInfo>> Repository::RestoreBranch(
    const std::string& tenant, const std::string& name, const BranchPoint& point,
    const std::string& backup_name) {
  if (!point.lsn.has_value() && !point.time.has_value() && !point.snapshot.has_value()) {
    return absl::InvalidArgumentError("restore needs an LSN, a time or a snapshot");
  }
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (b->protected_()) return Protected(*b, "restored in place");
  // NAME_old_<time>, NAME shortened so that any valid branch name can be restored.
  const std::string suffix =
      "_old_" + absl::FormatTime("%Y%m%dT%H%M%SZ", absl::Now(), absl::UTCTimeZone());
  std::string backup =
      backup_name.empty() ? name.substr(0, kMaxNameLength - suffix.size()) + suffix : backup_name;
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", backup));
  if (t->branches.count(backup)) {
    return absl::AlreadyExistsError(absl::StrFormat("branch \"%s\" already exists", backup));
  }
  auto current = timelines_.find(TimelineId::FromBytes(b->timeline_id().data()));
  if (current == timelines_.end())
    return absl::InternalError("branch points to a missing timeline");
  if (WriterLiveLocked(*current->second)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("branch \"%s\" has a running endpoint; stop it first", name));
  }
  std::shared_ptr<Timeline> base = current->second;
  Lsn lsn;
  if (point.snapshot.has_value()) {
    // The snapshot's state: its timeline never takes a write, so it is its branch
    // point on its ancestor, which is where the restored timeline starts.
    CAMBIUM_ASSIGN_OR_RETURN(auto* snap, FindBranchLocked(*t, *point.snapshot));
    if (!snap->snapshot() || snap->parent() != name) {
      return absl::FailedPreconditionError(
          absl::StrFormat("\"%s\" is not a snapshot of branch \"%s\"", *point.snapshot, name));
    }
    CAMBIUM_ASSIGN_OR_RETURN(auto snap_timeline, BranchTimelineLocked(*t, *point.snapshot));
    if (!snap_timeline->ancestor()) return absl::InternalError("a snapshot without an ancestor");
    base = snap_timeline->ancestor();
    lsn = snap_timeline->ancestor_lsn();
  } else {
    CAMBIUM_ASSIGN_OR_RETURN(lsn, ResolvePointLocked(*current->second, point));
  }
  // Below the branch's own start, the history is its ancestor's: branch from there so
  // the backup does not have to stay for the restored branch's sake.
  while (base->ancestor() && lsn < base->ancestor_lsn()) base = base->ancestor();
  rocksdb::WriteBatch batch;
  CAMBIUM_ASSIGN_OR_RETURN(auto restored, NewChildTimelineLocked(base, lsn, &batch));
  storage::v1::BranchRecord backup_record = *b;
  backup_record.set_name(backup);
  backup_record.set_created_unix_micros(absl::ToUnixMicros(absl::Now()));
  backup_record.set_expires_unix_micros(0);
  // The backup is a branch of its own: its own passwords, made on first use.
  backup_record.clear_owner_password();
  backup_record.clear_reader_password();
  storage::v1::BranchRecord updated = *b;
  updated.set_timeline_id(IdBytes(restored->id()));
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), updated.SerializeAsString());
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, backup), backup_record.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR(base->WriteSealed(lsn, &batch));
  AddTimelineLocked(restored);
  *b = updated;
  t->branches[backup] = backup_record;
  LogInfo("branch_restored",
          {{"tenant", tenant}, {"branch", name}, {"lsn", lsn}, {"backup", backup}});
  return std::make_pair(ToInfoLocked(*t, t->branches.at(name)), ToInfoLocked(*t, backup_record));
}

absl::StatusOr<BranchInfo> Repository::SetProtection(const std::string& tenant,
                                                     const std::string& name, bool is_protected) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
  CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, name));
  if (b->snapshot() && !is_protected) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "\"%s\" is a snapshot: always protected (delete it with cambium snapshot delete)", name));
  }
  storage::v1::BranchRecord updated = *b;
  updated.set_protected_(is_protected);
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), BranchKey(t->id, name), updated.SerializeAsString());
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, true));
  *b = updated;
  return ToInfoLocked(*t, *b);
}

absl::StatusOr<LsnLookup> Repository::LsnByTimestamp(const std::string& tenant,
                                                     const std::string& branch, absl::Time time) {
  std::shared_ptr<Timeline> timeline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(auto* b, FindBranchLocked(*t, branch));
    timeline = timelines_.at(TimelineId::FromBytes(b->timeline_id().data()));
  }
  return archive_.LsnByTimestamp(*timeline, time);
}

int Repository::DeleteExpiredBranches(absl::Time now) {
  std::vector<std::pair<std::string, std::string>> expired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, t] : tenants_) {
      for (const auto& [name, b] : t.branches) {
        if (b.expires_unix_micros() != 0 && absl::FromUnixMicros(b.expires_unix_micros()) <= now &&
            !b.protected_()) {
          expired.emplace_back(t.record.name(), name);
        }
      }
    }
  }
  int deleted = 0;
  for (const auto& [tenant, name] : expired) {
    absl::Status s = DeleteBranchAt(tenant, name, /*purge=*/false, now);
    if (s.ok()) {
      ++deleted;
      LogInfo("branch_expired", {{"tenant", tenant}, {"branch", name}});
    } else {
      LogDebug("branch_expiry_deferred", {{"tenant", tenant}, {"branch", name}, {"reason", s}});
    }
  }
  return deleted;
}

}  // namespace cambium::pageserver
