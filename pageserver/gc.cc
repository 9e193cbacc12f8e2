// Repository: garbage collection (docs/pageserver.md, "GC").
//
// Per timeline, with cutoff C and read points P (descendants' branch points), the
// keep points are C and every point of P. A version is kept if it is tagged above C
// (inside the PITR window) or if it is what a read at some keep point K returns:
//  - a file version: the newest visible one at or below K;
//  - a block version: the newest visible one at or below K, and only if the file
//    exists at K and this version is not older than the file's incarnation there.
//    A dropped file (DROP TABLE, VACUUM FULL, TRUNCATE, CLUSTER unlink the old
//    relation file) is therefore garbage once no keep point sees it.
// Abandoned (invisible) versions go too, but only after a re-check under the
// writer's lock: the current writer may have rewritten the same key since.
// On a root timeline, a path whose only remaining versions are removals is dropped
// entirely (no version reads as "does not exist" there anyway).
//
// WAL is kept from the segment holding the redo point of the oldest state that can
// still be started (at C or at any read point).
//
// Races: the read points and the cutoff are decided under mu_, the lock every branch
// creation holds, so a branch is either among the read points or refused below the
// cutoff. Versions GC deletes are tagged below the cutoff, and no writer can write
// there again (a writer starts at or above last_record_lsn >= C).
#include <algorithm>
#include <chrono>
#include <map>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/pg/pg_control.h"
#include "common/status.h"
#include "common/sync_point.h"
#include "pageserver/keys.h"
#include "pageserver/pageserver_metrics.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

// Up to this many dropped files, GC compacts each one's key range; beyond, the
// timeline's whole range once.
constexpr size_t kMaxCompactedRanges = 64;

// Garbage collection of one family of one timeline.
class FamilyCollector {
 public:
  FamilyCollector(PageStore* store, Family family, Timeline& t, Lsn cutoff,
                  std::vector<Lsn> keep_points)
      : store_(store), family_(family), t_(t), cutoff_(cutoff), keep_(std::move(keep_points)) {}

  // Returns how many versions it removed.
  absl::StatusOr<uint64_t> Run();
  // Paths with no version left (their key ranges are worth compacting).
  const std::vector<std::string>& dropped_paths() const { return dropped_; }
  // Key and value bytes of the versions the scan removed (not the abandoned ones).
  uint64_t removed_bytes() const { return removed_bytes_; }

 private:
  struct Version {
    std::string key;
    Lsn tag;
    bool keep = false;
    bool abandoned = false;  // invisible: deleted after a re-check under the writer's lock
    bool removal = false;    // a file version saying "does not exist"
    size_t bytes = 0;        // key and value
  };

  absl::Status StartPath(std::string_view path);
  // Decides one version of the current group (newest first).
  void Decide(Version& v, uint64_t generation, std::string_view value);
  absl::Status FinishPath();
  absl::Status Delete(const std::string& key, size_t bytes);
  absl::Status Flush();

  PageStore* const store_;
  const Family family_;
  Timeline& t_;
  const Lsn cutoff_;
  const std::vector<Lsn> keep_;  // ascending

  std::string path_;
  std::vector<std::optional<FileState>> states_;  // blocks: the file at each keep point
  std::string group_;                             // path (files) or path + block (blocks)
  std::vector<bool> claimed_;                     // per keep point, within the group
  std::vector<Version> path_versions_;            // files: every version of the path
  bool path_has_kept_ = false;                    // blocks: any version of the path stays

  rocksdb::WriteBatch delete_batch_;
  std::vector<std::string> abandoned_;
  std::vector<std::string> dropped_;
  uint64_t removed_ = 0;
  uint64_t removed_bytes_ = 0;
};

absl::Status FamilyCollector::StartPath(std::string_view path) {
  CAMBIUM_RETURN_IF_ERROR(FinishPath());
  path_.assign(path);
  path_has_kept_ = false;
  states_.clear();
  if (family_ != Family::kBlocks) return absl::OkStatus();
  // The file as a read at each keep point sees it, through the ancestry.
  for (Lsn k : keep_) {
    CAMBIUM_ASSIGN_OR_RETURN(auto v, t_.GetFileState(path_, k));
    if (v.has_value() && v->state.exists && v->state.kind == FileKind::kRegular) {
      states_.push_back(v->state);
    } else {
      states_.push_back(std::nullopt);
    }
  }
  return absl::OkStatus();
}

void FamilyCollector::Decide(Version& v, uint64_t generation, std::string_view value) {
  if (!t_.Visible(v.tag, generation)) {
    v.abandoned = true;
    abandoned_.push_back(v.key);
    return;
  }
  if (v.tag > cutoff_) {
    v.keep = true;
    return;
  }
  // Keep points at or above this tag not yet claimed read this version.
  for (size_t i = 0; i < keep_.size(); ++i) {
    if (claimed_[i] || keep_[i] < v.tag) continue;
    claimed_[i] = true;
    if (family_ == Family::kFiles) {
      v.keep = true;
    } else if (states_[i].has_value() && v.tag >= states_[i]->incarnation) {
      v.keep = true;  // the file exists there and this block is part of it
    }
  }
  if (family_ == Family::kFiles) {
    FileVersion decoded;
    v.removal = DecodeFileValue(v.key, value, &decoded).ok() && !decoded.state.exists;
  }
}

absl::Status FamilyCollector::FinishPath() {
  if (family_ == Family::kFiles) {
    // On a root, a path that only says "removed" reads the same with no version.
    bool only_removals = !t_.ancestor();
    for (const Version& v : path_versions_) only_removals &= !v.keep || v.removal;
    bool any_kept = false;
    for (const Version& v : path_versions_) {
      if (v.abandoned) continue;
      if (v.keep && !only_removals) {
        any_kept = true;
        continue;
      }
      CAMBIUM_RETURN_IF_ERROR(Delete(v.key, v.bytes));
    }
    if (!path_versions_.empty() && !any_kept) dropped_.push_back(path_);
    path_versions_.clear();
  } else if (!path_.empty() && !path_has_kept_) {
    dropped_.push_back(path_);
  }
  return absl::OkStatus();
}

absl::Status FamilyCollector::Delete(const std::string& key, size_t bytes) {
  delete_batch_.Delete(store_->cf(family_), key);
  ++removed_;
  removed_bytes_ += bytes;
  if (delete_batch_.Count() >= 10000) return Flush();
  return absl::OkStatus();
}

absl::Status FamilyCollector::Flush() {
  if (delete_batch_.Count() == 0) return absl::OkStatus();
  CAMBIUM_RETURN_IF_ERROR(store_->Write(&delete_batch_, false));
  delete_batch_.Clear();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> FamilyCollector::Run() {
  const std::string prefix = keys::TimelinePrefix(t_.id());
  auto it = store_->NewBoundedIterator(family_, prefix, keys::PrefixEnd(prefix));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    std::string_view path;
    Lsn tag;
    if (family_ == Family::kBlocks) {
      keys::ParsedBlockKey parsed;
      if (!keys::ParseBlockKey(key, &parsed)) continue;
      path = parsed.path;
      tag = parsed.lsn;
    } else {
      keys::ParsedFileKey parsed;
      if (!keys::ParseFileKey(key, &parsed)) continue;
      path = parsed.path;
      tag = parsed.lsn;
    }
    if (path != path_ || path_.empty()) CAMBIUM_RETURN_IF_ERROR(StartPath(path));
    const std::string_view group = key.substr(0, key.size() - 8);
    if (group != group_) {
      group_.assign(group);
      claimed_.assign(keep_.size(), false);
    }
    const std::string_view value(it->value().data(), it->value().size());
    Version v{.key = std::string(key), .tag = tag, .bytes = key.size() + value.size()};
    Decide(v, StoredGeneration(value), value);
    if (family_ == Family::kFiles) {
      path_versions_.push_back(std::move(v));
    } else if (v.keep) {
      path_has_kept_ = true;
    } else if (!v.abandoned) {
      CAMBIUM_RETURN_IF_ERROR(Delete(v.key, v.bytes));
    }
  }
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "scan for GC"));
  CAMBIUM_RETURN_IF_ERROR(FinishPath());
  CAMBIUM_RETURN_IF_ERROR(Flush());
  CAMBIUM_SYNC_POINT("Gc:BeforeDeletingAbandoned");
  for (size_t i = 0; i < abandoned_.size(); i += 1000) {
    const std::vector<std::string> chunk(
        abandoned_.begin() + i, abandoned_.begin() + std::min(abandoned_.size(), i + 1000));
    CAMBIUM_ASSIGN_OR_RETURN(uint64_t n, t_.DeleteIfStillInvisible(family_, chunk));
    removed_ += n;
  }
  return removed_;
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
    // Read points and cutoff are decided under mu_, which branch creation holds: a
    // branch is either a read point here or refused below the cutoff.
    std::lock_guard<std::mutex> lock(mu_);
    auto it = timelines_.find(id);
    if (it == timelines_.end()) return absl::NotFoundError("no such timeline");
    t = it->second;
    points = ReadPointsLocked(id);
    cutoff = std::min(cutoff, t->last_record_lsn());
    if (cutoff < t->gc_cutoff_lsn()) cutoff = t->gc_cutoff_lsn();
    CAMBIUM_RETURN_IF_ERROR(t->SetGcCutoff(cutoff));
  }
  CAMBIUM_SYNC_POINT("Repository::GcTimeline:CutoffDecided");
  std::set<Lsn> keep_set = points;
  keep_set.insert(cutoff);
  const std::vector<Lsn> keep(keep_set.begin(), keep_set.end());
  const PageServerMetrics& m = PageServerMetrics::Get();
  const auto started = std::chrono::steady_clock::now();
  absl::Cleanup timed = [&m, started] {
    m.gc_seconds.Add(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  };
  uint64_t removed = 0;
  std::vector<std::string> dropped;
  for (Family f : {Family::kBlocks, Family::kFiles}) {
    FamilyCollector collector(store_, f, *t, cutoff, keep);
    CAMBIUM_ASSIGN_OR_RETURN(uint64_t n, collector.Run());
    removed += n;
    m.gc_removed_versions.Increment(n);
    m.gc_removed_bytes.Increment(collector.removed_bytes());
    if (f == Family::kBlocks) dropped = collector.dropped_paths();
  }
  // Deleted keys return their space at compaction. Files dropped entirely are where
  // most of the garbage is: compact their key ranges now (one range per file while
  // there are few, the timeline's whole range once for a mass drop). Elsewhere the
  // deletion-triggered compaction of the blocks family (page_store.cc) does it.
  if (dropped.size() <= kMaxCompactedRanges) {
    for (const std::string& path : dropped) {
      const std::string prefix = keys::PathPrefix(id, path);
      CAMBIUM_RETURN_IF_ERROR(
          store_->CompactRange(Family::kBlocks, prefix, keys::PrefixEnd(prefix)));
    }
  } else {
    const std::string prefix = keys::TimelinePrefix(id);
    CAMBIUM_RETURN_IF_ERROR(store_->CompactRange(Family::kBlocks, prefix, keys::PrefixEnd(prefix)));
  }
  // WAL: a compute starting at the cutoff (or at a read point) replays from the redo
  // point named by pg_control in that state.
  Lsn keep_wal_from = cutoff;
  for (Lsn at : keep) {
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
                          {"dropped_files", dropped.size()},
                          {"wal_kept_from", keep_wal_from}});
  return removed;
}

absl::StatusOr<GcResult> Repository::RunGc(const std::string& tenant) {
  PageServerMetrics::Get().gc_runs.Increment();
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
    auto removed = GcTimeline(t->id(), lookup.lsn);
    if (absl::IsNotFound(removed.status())) continue;  // deleted meanwhile
    CAMBIUM_RETURN_IF_ERROR(removed.status());
    result.versions_removed += *removed;
    result.cutoff = std::max(result.cutoff, lookup.lsn);
  }
  return result;
}

}  // namespace cambium::pageserver
