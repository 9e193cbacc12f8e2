// Repository: taking a tenant out of service here for a move to another pageserver,
// and serving one moved here (docs/scale-out.md "Moving a tenant"). The transfer of
// the keys themselves is pageserver/tenant_transfer.h.
//
// A move's state here is one meta key per tenant, MoveKey ("mv|" tenant): "" while
// the tenant is moving away (fenced, data kept for the export), the new
// pageserver's address once it is attached there (data deleted). It is written,
// synced, before anything else changes, so a crash at any point leaves the tenant
// either served (no key), out of service with its data, or gone with a forwarding
// address: never served here and there at once.
#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/tenant_moves.h"
#include "pageserver/keys.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

constexpr char kMovePrefix[] = "mv|";

// The ids of the tenant's timelines, from their records in the store.
absl::StatusOr<std::vector<TimelineId>> StoredTimelines(PageStore& store, const TenantId& id) {
  std::string prefix = "tl|";
  id.AppendBytes(&prefix);
  std::vector<TimelineId> out;
  auto it = store.NewBoundedIterator(Family::kMeta, prefix, keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    if (it->key().size() != prefix.size() + 16) continue;
    out.push_back(TimelineId::FromBytes(it->key().data() + prefix.size()));
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "read timeline records"));
  return out;
}

}  // namespace

std::string Repository::MoveKey(const TenantId& id) {
  std::string key = kMovePrefix;
  id.AppendBytes(&key);
  return key;
}

std::vector<std::string> Repository::TenantMetaPrefixes(const TenantId& id) {
  std::vector<std::string> out;
  for (const char* p : {"t|", "tl|", "b|", "x|", "seal|", "w|", "a|", "skdel|"}) {
    std::string prefix = p;
    id.AppendBytes(&prefix);
    out.push_back(std::move(prefix));
  }
  return out;
}

absl::Status Repository::LoadMovesLocked() {
  const std::string upper = keys::PrefixEnd(kMovePrefix);
  auto it = store_->NewBoundedIterator(Family::kMeta, kMovePrefix, upper);
  for (it->Seek(kMovePrefix); it->Valid(); it->Next()) {
    if (it->key().size() != sizeof(kMovePrefix) - 1 + 16) {
      return absl::DataLossError("malformed tenant move record");
    }
    moves_[TenantId::FromBytes(it->key().data() + sizeof(kMovePrefix) - 1)] =
        it->value().ToString();
  }
  return FromRocks(it->status(), "load tenant moves");
}

absl::Status Repository::PurgeTenantDataLocked(const TenantId& id) {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<TimelineId> timelines, StoredTimelines(*store_, id));
  for (const TimelineId& t : timelines) {
    CAMBIUM_RETURN_IF_ERROR(store_->DeleteTimelineData(t, {}));
  }
  rocksdb::WriteBatch batch;
  for (const std::string& p : TenantMetaPrefixes(id)) {
    batch.DeleteRange(store_->cf(Family::kMeta), p, keys::PrefixEnd(p));
  }
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  if (!timelines.empty()) {
    LogInfo("tenant_purged_after_move", {{"tenant", id}, {"timelines", timelines.size()}});
  }
  return absl::OkStatus();
}

absl::StatusOr<Repository::MovingTenant> Repository::FenceTenantForMove(const std::string& tenant) {
  std::lock_guard<std::mutex> lock(mu_);
  MovingTenant m;
  if (auto found = FindTenantLocked(tenant); found.ok()) {
    Tenant* t = *found;
    m.id = t->id;
    m.name = t->record.name();
    // The mark first: from here on a restart keeps the tenant out of service.
    rocksdb::WriteBatch mark;
    mark.Put(store_->cf(Family::kMeta), MoveKey(m.id), "");
    CAMBIUM_RETURN_IF_ERROR(store_->Write(&mark, /*sync=*/true));
    std::vector<TimelineId> ids;
    for (const auto& [id, timeline] : timelines_) {
      if (timeline->tenant_id() == m.id) ids.push_back(id);
    }
    for (const TimelineId& id : ids) {
      std::shared_ptr<Timeline> timeline = timelines_[id];
      // Waits for its writes in progress; every later one is refused.
      timeline->MarkDeleted();
      archive_.ForgetTimeline(id);
      ForgetSizes(id);
      children_.erase(id);
      timelines_.erase(id);
    }
    tenants_.erase(m.id);
    moves_[m.id] = "";
    LogInfo("tenant_fenced_for_move", {{"tenant", m.name}, {"timelines", ids.size()}});
  } else {
    // Already moving (an export retried, maybe after a restart): by id or name.
    bool matched = false;
    for (const auto& [id, to] : moves_) {
      if (!to.empty()) continue;
      std::string name;
      if (auto record = store_->GetMeta(TenantKey(id)); record.ok() && record->has_value()) {
        storage::v1::TenantRecord r;
        if (r.ParseFromString(**record)) name = r.name();
      }
      if (id.ToString() == tenant || name == tenant) {
        m.id = id;
        m.name = name;
        matched = true;
        break;
      }
    }
    if (!matched) return found.status();
  }
  CAMBIUM_ASSIGN_OR_RETURN(m.timelines, StoredTimelines(*store_, m.id));
  m.meta_prefixes = TenantMetaPrefixes(m.id);
  return m;
}

absl::Status Repository::AbortMove(const TenantId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = moves_.find(id);
  if (it == moves_.end() || !it->second.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("tenant %s is not moving away from this pageserver", id.ToString()));
  }
  rocksdb::WriteBatch batch;
  batch.Delete(store_->cf(Family::kMeta), MoveKey(id));
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  moves_.erase(it);
  CAMBIUM_RETURN_IF_ERROR(LoadLocked(id));
  LogInfo("tenant_move_aborted", {{"tenant", id}});
  return absl::OkStatus();
}

absl::Status Repository::FinishMove(const TenantId& id, const std::string& moved_to) {
  if (moved_to.empty()) return absl::InvalidArgumentError("FinishMove needs the new address");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = moves_.find(id);
  if (it == moves_.end()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("tenant %s is not moving away from this pageserver", id.ToString()));
  }
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), MoveKey(id), moved_to);
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
  it->second = moved_to;
  CAMBIUM_RETURN_IF_ERROR(PurgeTenantDataLocked(id));
  LogInfo("tenant_moved", {{"tenant", id}, {"to", moved_to}});
  return absl::OkStatus();
}

absl::Status Repository::PrepareAttach(const TenantId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tenants_.contains(id)) {
    return absl::AlreadyExistsError(
        absl::StrFormat("tenant %s is already served by this pageserver", id.ToString()));
  }
  auto it = moves_.find(id);
  if (it != moves_.end() && it->second.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "tenant %s is moving away from this pageserver: finish or abort that move first",
        id.ToString()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<TimelineId> leftover, StoredTimelines(*store_, id));
  if (!leftover.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "tenant %s has %d timelines in this pageserver's store that are not served",
        id.ToString(), leftover.size()));
  }
  if (it != moves_.end()) {
    // It moved away from here once and now comes back: forget the forwarding address
    // before its keys arrive, so that no restart purges them.
    rocksdb::WriteBatch batch;
    batch.Delete(store_->cf(Family::kMeta), MoveKey(id));
    CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, /*sync=*/true));
    moves_.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<TenantInfo> Repository::LoadAttachedTenant(const TenantId& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tenants_.contains(id) || moves_.contains(id)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("tenant %s cannot be attached now (PrepareAttach first)", id.ToString()));
  }
  CAMBIUM_RETURN_IF_ERROR(LoadLocked(id));
  auto it = tenants_.find(id);
  if (it == tenants_.end()) {
    return absl::DataLossError(
        absl::StrFormat("the transfer of tenant %s holds no tenant record", id.ToString()));
  }
  LogInfo("tenant_attached", {{"tenant", it->second.record.name()}});
  return InfoOf(it->second);
}

absl::Status Repository::MoveStatus(const TenantId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = moves_.find(id);
  if (it == moves_.end()) return absl::OkStatus();
  return it->second.empty() ? TenantMovingStatus(id) : TenantMovedStatus(id, it->second);
}

}  // namespace cambium::pageserver
