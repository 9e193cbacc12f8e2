#include "pageserver/timeline.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/status.h"
#include "pageserver/keys.h"

namespace cambium::pageserver {

std::vector<std::pair<uint64_t, Lsn>> Timeline::AttachList(
    const storage::v1::TimelineRecord& record) {
  std::vector<std::pair<uint64_t, Lsn>> attaches;
  for (const auto& a : record.attaches()) attaches.emplace_back(a.generation(), Lsn(a.start_lsn()));
  return attaches;
}

std::string Timeline::RecordKey(const TenantId& tenant, const TimelineId& timeline) {
  std::string key = "tl|";
  tenant.AppendBytes(&key);
  timeline.AppendBytes(&key);
  return key;
}

Timeline::Timeline(PageStore* store, const storage::v1::TimelineRecord& record,
                   std::shared_ptr<Timeline> ancestor)
    : store_(store),
      tenant_id_(TenantId::FromBytes(record.tenant_id().data())),
      id_(TimelineId::FromBytes(record.timeline_id().data())),
      ancestor_(std::move(ancestor)),
      ancestor_lsn_(record.ancestor_lsn()),
      record_(record),
      visibility_(std::make_shared<Visibility>(AttachList(record))) {}

absl::StatusOr<std::shared_ptr<Timeline>> Timeline::Load(PageStore* store,
                                                         const storage::v1::TimelineRecord& record,
                                                         std::shared_ptr<Timeline> ancestor) {
  if (record.tenant_id().size() != 16 || record.timeline_id().size() != 16) {
    return absl::DataLossError("timeline record has malformed ids");
  }
  const bool has_ancestor = !record.ancestor_id().empty();
  if (has_ancestor != (ancestor != nullptr) ||
      (ancestor && ancestor->id() != TimelineId::FromBytes(record.ancestor_id().data()))) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timeline %s: its ancestor is missing",
                        TimelineId::FromBytes(record.timeline_id().data()).ToString()));
  }
  std::shared_ptr<Timeline> timeline(new Timeline(store, record, std::move(ancestor)));
  for (Family f : {Family::kBlocks, Family::kFiles}) {
    auto any = store->HasAnyKey(f, keys::TimelinePrefix(timeline->id_));
    if (!any.ok()) return any.status();
    if (*any) timeline->own_versions_ = true;
  }
  std::lock_guard<std::mutex> lock(timeline->write_mu_);
  absl::Status s = timeline->LoadWriteStateLocked();
  if (!s.ok()) return s;
  return timeline;
}

storage::v1::TimelineRecord Timeline::record() const {
  std::lock_guard<std::mutex> lock(mu_);
  return record_;
}

Lsn Timeline::last_record_lsn() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Lsn(record_.last_record_lsn());
}

Lsn Timeline::gc_cutoff_lsn() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Lsn(record_.gc_cutoff_lsn());
}

uint64_t Timeline::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return record_.generation();
}

std::shared_ptr<const Visibility> Timeline::visibility() const {
  std::lock_guard<std::mutex> lock(mu_);
  return visibility_;
}

bool Timeline::Visible(Lsn tag, uint64_t generation) const {
  return visibility()->Visible(tag, generation);
}

absl::Status Timeline::PersistRecordLocked(bool sync) const {
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), RecordKey(tenant_id_, id_), record_.SerializeAsString());
  return store_->Write(&batch, sync);
}

void Timeline::AdvanceLastRecordLsn(Lsn lsn, rocksdb::WriteBatch* batch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (lsn.value() <= record_.last_record_lsn()) return;
  record_.set_last_record_lsn(lsn.value());
  batch->Put(store_->cf(Family::kMeta), RecordKey(tenant_id_, id_), record_.SerializeAsString());
}

void Timeline::MarkDeleted() {
  std::unique_lock<std::shared_mutex> lock(delete_mu_);
  deleted_ = true;
}

bool Timeline::deleted() const {
  std::shared_lock<std::shared_mutex> lock(delete_mu_);
  return deleted_;
}

absl::StatusOr<Timeline::WriteGuard> Timeline::GuardWrite() const {
  WriteGuard guard(delete_mu_);
  if (deleted_) {
    return absl::FailedPreconditionError(
        absl::StrFormat("timeline %s was deleted", id_.ToString()));
  }
  return guard;
}

absl::Status Timeline::SetGcCutoff(Lsn cutoff) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> lock(mu_);
  if (cutoff.value() <= record_.gc_cutoff_lsn()) return absl::OkStatus();
  record_.set_gc_cutoff_lsn(cutoff.value());
  return PersistRecordLocked(/*sync=*/true);
}

}  // namespace cambium::pageserver
