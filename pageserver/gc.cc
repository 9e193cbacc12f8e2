// Repository: garbage collection (docs/pageserver.md, "GC").
//
// Per timeline, with cutoff C and read points P (descendants' branch points):
// keep every version tagged above C, the newest visible version at or below C, and
// the newest visible version at or below each point of P; delete the rest and every
// abandoned (invisible) version. WAL is kept from the segment holding the redo point
// of the oldest state that can still be started (at C or at any read point).
#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/pg/pg_control.h"
#include "common/status.h"
#include "pageserver/keys.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

// Deletes unneeded versions of one family of one timeline; returns how many.
absl::StatusOr<uint64_t> CollectFamily(PageStore* store, Family family, const Timeline& t,
                                       Lsn cutoff, const std::set<Lsn>& read_points) {
  const std::string prefix = keys::TimelinePrefix(t.id());
  auto it = store->NewBoundedIterator(family, prefix, keys::PrefixEnd(prefix));
  std::set<Lsn> keep_points = read_points;
  keep_points.insert(cutoff);
  rocksdb::WriteBatch batch;
  uint64_t removed = 0;
  std::string group;
  std::set<Lsn> unclaimed;
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const rocksdb::Slice key = it->key();
    if (key.size() < keys::kTimelineBytes + 9) continue;
    const std::string_view g(key.data(), key.size() - 8);
    if (g != group) {
      group.assign(g);
      unclaimed = keep_points;
    }
    const Lsn tag(~keys::LoadBigEndian64(key.data() + key.size() - 8));
    const std::string_view value(it->value().data(), it->value().size());
    if (!t.Visible(tag, StoredGeneration(value))) {
      batch.Delete(store->cf(family), key);
      ++removed;
      continue;
    }
    if (tag > cutoff) continue;  // inside the PITR window
    auto claim = unclaimed.lower_bound(tag);
    if (claim != unclaimed.end()) {
      unclaimed.erase(claim, unclaimed.end());  // the newest at or below these points
      continue;
    }
    batch.Delete(store->cf(family), key);
    ++removed;
    if (batch.Count() >= 10000) {
      CAMBIUM_RETURN_IF_ERROR(store->Write(&batch, false));
      batch.Clear();
    }
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "scan for GC"));
  if (batch.Count() > 0) CAMBIUM_RETURN_IF_ERROR(store->Write(&batch, false));
  return removed;
}

}  // namespace

std::set<Lsn> Repository::ReadPointsLocked(const TimelineId& id) const {
  std::set<Lsn> points;
  for (const auto& child : ChildrenLocked(id)) {
    const Lsn y = child->ancestor_lsn();
    points.insert(y);
    for (Lsn q : ReadPointsLocked(child->id())) points.insert(std::min(q, y));
  }
  return points;
}

absl::StatusOr<uint64_t> Repository::GcTimeline(const TimelineId& id, Lsn cutoff) {
  std::shared_ptr<Timeline> t;
  std::set<Lsn> points;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = timelines_.find(id);
    if (it == timelines_.end()) return absl::NotFoundError("no such timeline");
    t = it->second;
    points = ReadPointsLocked(id);
  }
  cutoff = std::min(cutoff, t->last_record_lsn());
  if (cutoff < t->gc_cutoff_lsn()) cutoff = t->gc_cutoff_lsn();
  // Record the cutoff first: from now on nothing may branch below it.
  CAMBIUM_RETURN_IF_ERROR(t->SetGcCutoff(cutoff));
  uint64_t removed = 0;
  for (Family f : {Family::kBlocks, Family::kFiles}) {
    CAMBIUM_ASSIGN_OR_RETURN(uint64_t n, CollectFamily(store_, f, *t, cutoff, points));
    removed += n;
  }
  // WAL: a compute starting at the cutoff (or at a read point) replays from the redo
  // point named by pg_control in that state.
  Lsn keep_wal_from = cutoff;
  std::set<Lsn> starts = points;
  starts.insert(cutoff);
  for (Lsn at : starts) {
    if (at < t->ancestor_lsn()) continue;  // below this timeline's own WAL
    auto page = t->GetPage("global/pg_control", 0, at);
    if (!page.ok()) {
      keep_wal_from = std::min(keep_wal_from, t->ancestor_lsn());  // unknown: keep everything
      continue;
    }
    auto control = pg::ParsePgControl(page->data);
    if (control.ok()) keep_wal_from = std::min(keep_wal_from, control->redo().SegmentStart());
  }
  CAMBIUM_RETURN_IF_ERROR(archive_.Prune(*t, keep_wal_from));
  {
    std::lock_guard<std::mutex> lock(sizes_mu_);
    unique_sizes_.erase(id);
  }
  LogInfo("gc_timeline", {{"timeline", id},
                          {"cutoff", cutoff},
                          {"removed", removed},
                          {"wal_kept_from", keep_wal_from}});
  return removed;
}

absl::StatusOr<GcResult> Repository::RunGc(const std::string& tenant) {
  std::vector<std::shared_ptr<Timeline>> timelines;
  absl::Duration window;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    window = absl::Seconds(t->record.pitr_window_seconds());
    for (const auto& [id, tl] : timelines_) {
      if (tl->tenant_id() == t->id) timelines.push_back(tl);
    }
  }
  GcResult result;
  const absl::Time horizon = absl::Now() - window;
  for (const auto& t : timelines) {
    CAMBIUM_ASSIGN_OR_RETURN(LsnLookup lookup, archive_.LsnByTimestamp(*t, horizon));
    // Only a commit inside this timeline's own history moves its cutoff.
    if (lookup.kind != LsnLookupKind::kPresent || lookup.lsn < t->ancestor_lsn()) continue;
    CAMBIUM_ASSIGN_OR_RETURN(uint64_t removed, GcTimeline(t->id(), lookup.lsn));
    result.versions_removed += removed;
    result.cutoff = std::max(result.cutoff, lookup.lsn);
  }
  return result;
}

}  // namespace cambium::pageserver
