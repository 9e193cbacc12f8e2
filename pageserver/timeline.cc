#include "pageserver/timeline.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/bytes.h"
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

std::string Timeline::SealKey() const {
  std::string key = "seal|";
  tenant_id_.AppendBytes(&key);
  id_.AppendBytes(&key);
  return key;
}

Timeline::Timeline(PageStore* store, const storage::v1::TimelineRecord& record,
                   std::shared_ptr<Timeline> ancestor, TimelineOptions options)
    : store_(store),
      options_(options),
      tenant_id_(TenantId::FromBytes(record.tenant_id().data())),
      id_(TimelineId::FromBytes(record.timeline_id().data())),
      ancestor_(std::move(ancestor)),
      ancestor_lsn_(record.ancestor_lsn()),
      last_record_lsn_(record.last_record_lsn()),
      record_(record),
      visibility_(std::make_shared<Visibility>(AttachList(record))) {}

absl::StatusOr<std::shared_ptr<Timeline>> Timeline::Load(PageStore* store,
                                                         const storage::v1::TimelineRecord& record,
                                                         std::shared_ptr<Timeline> ancestor,
                                                         TimelineOptions options) {
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
  std::shared_ptr<Timeline> timeline(new Timeline(store, record, std::move(ancestor), options));
  for (Family f : {Family::kBlocks, Family::kFiles}) {
    auto any = store->HasAnyKey(f, keys::TimelinePrefix(timeline->id_));
    if (!any.ok()) return any.status();
    if (*any) timeline->own_versions_ = true;
  }
  auto seal = store->GetMeta(timeline->SealKey());
  if (!seal.ok()) return seal.status();
  if (seal->has_value()) {
    if ((*seal)->size() != 8) return absl::DataLossError("timeline seal is malformed");
    timeline->seal_ = LoadLittleEndian<uint64_t>((*seal)->data());
  }
  std::lock_guard<std::mutex> lock(timeline->write_mu_);
  absl::Status s = timeline->LoadWriteStateLocked();
  if (!s.ok()) return s;
  return timeline;
}

storage::v1::TimelineRecord Timeline::record() const {
  storage::v1::TimelineRecord r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r = record_;
  }
  r.set_last_record_lsn(last_record_lsn_.load());
  return r;
}

Lsn Timeline::seal_lsn() const { return Lsn(seal_.load()); }

Lsn Timeline::history_floor_lsn() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Lsn(record_.history_floor_lsn());
}

absl::Status Timeline::SetHistoryFloor(Lsn floor) {
  return RaiseRecordLsn(floor, &storage::v1::TimelineRecord::history_floor_lsn,
                        &storage::v1::TimelineRecord::set_history_floor_lsn);
}

absl::Status Timeline::RaiseRecordLsn(Lsn value,
                                      uint64_t (storage::v1::TimelineRecord::*get)() const,
                                      void (storage::v1::TimelineRecord::*set)(uint64_t)) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> lock(mu_);
  if (value.value() <= (record_.*get)()) return absl::OkStatus();
  (record_.*set)(value.value());
  return PersistRecordLocked(/*sync=*/true);
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

// Invariant: every write of the record key happens with mu_ held from the moment the
// serialized copy is taken until the write returns, so a stale copy never lands after
// a newer one. Fields updated elsewhere live under their own keys (the archive's end,
// the seal, the writer's state).
absl::Status Timeline::PersistRecordLocked(bool sync) const {
  rocksdb::WriteBatch batch;
  batch.Put(store_->cf(Family::kMeta), RecordKey(tenant_id_, id_), record_.SerializeAsString());
  return store_->Write(&batch, sync);
}

void Timeline::RaiseLastRecordLsn(Lsn lsn) {
  uint64_t current = last_record_lsn_.load();
  while (lsn.value() > current && !last_record_lsn_.compare_exchange_weak(current, lsn.value())) {
  }
}

absl::Status Timeline::WriteSealed(Lsn at, rocksdb::WriteBatch* batch) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> write_lock(write_mu_);
  const uint64_t seal = std::max(seal_.load(), at.value());
  std::string value;
  AppendLittleEndian<uint64_t>(&value, seal);
  batch->Put(store_->cf(Family::kMeta), SealKey(), value);
  CAMBIUM_RETURN_IF_ERROR(store_->Write(batch, /*sync=*/true));
  seal_ = seal;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Timeline::DeleteIfStillInvisible(Family family,
                                                          const std::vector<std::string>& keys) {
  CAMBIUM_ASSIGN_OR_RETURN(WriteGuard guard, GuardWrite());
  std::lock_guard<std::mutex> write_lock(write_mu_);  // no batch lands meanwhile
  auto vis = visibility();
  rocksdb::WriteBatch batch;
  for (const std::string& key : keys) {
    std::string value;
    rocksdb::Status s = store_->db()->Get(rocksdb::ReadOptions(), store_->cf(family), key, &value);
    if (s.IsNotFound()) continue;
    CAMBIUM_RETURN_IF_ERROR(FromRocks(s, "GC re-check"));
    if (key.size() < 8) continue;
    const Lsn tag(~keys::LoadBigEndian64(key.data() + key.size() - 8));
    if (vis->Visible(tag, StoredGeneration(value))) continue;  // rewritten since
    batch.Delete(store_->cf(family), key);
  }
  const uint64_t n = batch.Count();
  if (n > 0) CAMBIUM_RETURN_IF_ERROR(store_->Write(&batch, false));
  return n;
}

void Timeline::MarkDeleted() {
  {
    std::unique_lock<std::shared_mutex> lock(delete_mu_);
    deleted_ = true;
  }
  // A barrier waiting for a batch that will now never be applied stops waiting.
  std::lock_guard<std::mutex> lock(write_mu_);
  barrier_abandoned_ = true;
  applied_cv_.notify_all();
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
  return RaiseRecordLsn(cutoff, &storage::v1::TimelineRecord::gc_cutoff_lsn,
                        &storage::v1::TimelineRecord::set_gc_cutoff_lsn);
}

}  // namespace cambium::pageserver
