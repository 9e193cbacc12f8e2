// Repository: a branch's commits per time bucket and the range of points a restore
// can reach (GetCommitHistory; the console's chart, tools/console/).
//
// Everything comes from the WAL archive's commit index (WalArchive::History): no page
// data is read. The restorable range mirrors ResolvePointLocked (branches.cc), which
// is what a restore, a branch at a time and a time-travel query go through.
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {
namespace {

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<BranchHistory> Repository::GetCommitHistory(const std::string& tenant,
                                                           const std::string& branch,
                                                           const CommitHistoryQuery& query) {
  if (query.bucket < absl::Seconds(1)) {
    return absl::InvalidArgumentError("a history bucket must be at least 1 second wide");
  }
  std::shared_ptr<Timeline> timeline;
  absl::Duration pitr_window;
  BranchHistory out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CAMBIUM_ASSIGN_OR_RETURN(Tenant * t, FindTenantLocked(tenant));
    CAMBIUM_ASSIGN_OR_RETURN(timeline, BranchTimelineLocked(*t, branch));
    pitr_window = absl::Seconds(t->record.pitr_window_seconds());
  }
  // The timeline is held: a concurrent delete leaves its records readable until the
  // reads below finish, or they fail with the store's error.
  CAMBIUM_ASSIGN_OR_RETURN(out.restorable, RestorableRangeOf(*timeline, pitr_window));
  const absl::Time now = absl::Now();
  out.to = query.to.value_or(now);
  out.from = query.from ? *query.from : out.restorable.earliest_time.value_or(now - pitr_window);
  if (out.to <= out.from) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the history range is empty: from %s is not before to %s",
                        Rfc3339(out.from), Rfc3339(out.to)));
  }
  const int64_t buckets = (out.to - out.from) / query.bucket;
  if (buckets > kMaxHistoryBuckets) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d buckets of %s from %s to %s: at most %d; ask for wider buckets",
                        buckets, absl::FormatDuration(query.bucket), Rfc3339(out.from),
                        Rfc3339(out.to), kMaxHistoryBuckets));
  }
  CAMBIUM_ASSIGN_OR_RETURN(
      out.commits, archive_.History(*timeline, out.from, out.to, query.bucket, query.max_commits));
  return out;
}

absl::StatusOr<RestorableRange> Repository::RestorableRangeOf(const Timeline& timeline,
                                                              absl::Duration pitr_window) {
  RestorableRange r;
  r.pitr_window = pitr_window;
  r.latest_lsn = timeline.last_record_lsn();
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<CommitPoint> latest,
                           archive_.CommitAtOrBelow(timeline, r.latest_lsn));
  if (latest) r.latest_commit_time = latest->time;
  CAMBIUM_ASSIGN_OR_RETURN(r.earliest_lsn, EarliestRestorableLsn(timeline));
  const Timeline* root = &timeline;
  while (root->ancestor()) root = root->ancestor().get();
  CAMBIUM_ASSIGN_OR_RETURN(Lsn imported, archive_.FirstBoundary(*root));
  if (r.earliest_lsn == imported) {
    // ResolvePointLocked starts any time from the import on at the imported state.
    r.earliest_time = absl::FromUnixMicros(root->record().created_unix_micros());
  } else {
    // A time reaches the end of the last commit at or before it: the first commit at
    // or above the earliest point (the GC cutoff is a commit's end).
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<CommitPoint> first,
                             archive_.CommitAtOrAbove(timeline, r.earliest_lsn));
    if (first) r.earliest_time = first->time;
  }
  return r;
}

void Repository::FillRestorable(BranchInfo* info, const Timeline* timeline,
                                absl::Duration pitr_window) {
  if (timeline == nullptr) return;
  absl::StatusOr<RestorableRange> r = RestorableRangeOf(*timeline, pitr_window);
  if (r.ok()) info->restorable = *std::move(r);
}

absl::StatusOr<Lsn> Repository::EarliestRestorableLsn(const Timeline& timeline) {
  CAMBIUM_ASSIGN_OR_RETURN(Lsn earliest, EarliestKeptLsn(timeline));
  // A masked past is not restorable either (ResolvePointLocked refuses it).
  return std::max(earliest, timeline.history_floor_lsn());
}

absl::StatusOr<Lsn> Repository::EarliestKeptLsn(const Timeline& timeline) {
  if (!timeline.ancestor()) {
    CAMBIUM_ASSIGN_OR_RETURN(Lsn imported, archive_.FirstBoundary(timeline));
    return std::max(imported, timeline.gc_cutoff_lsn());
  }
  // GC moved the cutoff into the timeline's own history: nothing below it is kept.
  if (timeline.gc_cutoff_lsn() >= timeline.ancestor_lsn()) return timeline.gc_cutoff_lsn();
  // Below the branch point the ancestor's own rules apply; the branch point itself
  // is always a valid start (GC keeps a child's read point).
  CAMBIUM_ASSIGN_OR_RETURN(Lsn below, EarliestKeptLsn(*timeline.ancestor()));
  return std::min(below, timeline.ancestor_lsn());
}

}  // namespace cambium::pageserver
