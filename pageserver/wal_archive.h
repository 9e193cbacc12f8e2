// WalArchive: the WAL of every timeline, as the pageserver keeps it for the PITR
// window, so that a compute can start at any LSN in it and safekeepers can trim.
//
// WAL arrives in LSN order (from the safekeepers, or from an import) through Append.
// The archive stores it in checksummed chunks, decodes it as it arrives (records
// are verified by CRC) and maintains, in the same atomic write:
//  - its end, which is the timeline's last_record_lsn: the end of the last complete
//    record, the furthest point a branch or restore can use (the archive's state is
//    where it is persisted; Timeline::RaiseLastRecordLsn mirrors it in memory);
//  - a commit index, by time and by LSN, over the running maximum of commit
//    timestamps (max is monotonic in LSN, so "the end of the last commit before
//    the first commit later than t" — Postgres' recovery_target_time — is one seek).
// Reads (GetWal, time and boundary lookups) follow ancestors below the branch point.
//
// Thread-safety: thread-safe; appends to one timeline are serialized.
#ifndef CAMBIUM_PAGESERVER_WAL_ARCHIVE_H_
#define CAMBIUM_PAGESERVER_WAL_ARCHIVE_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lsn.h"
#include "common/pg/wal_decoder.h"
#include "pageserver/page_store.h"
#include "pageserver/timeline.h"

namespace cambium::pageserver {

enum class LsnLookupKind { kPresent, kBeforeRetention, kFuture, kNoData };

struct LsnLookup {
  LsnLookupKind kind = LsnLookupKind::kNoData;
  Lsn lsn;
};

// A commit in a timeline's history: the end of its record and its time (the
// running maximum of commit timestamps up to it, which time lookups compare with).
struct CommitPoint {
  Lsn end;
  absl::Time time;
};

// The commits of one bucket of a history, [start, start + width).
struct CommitBucket {
  absl::Time start;
  uint64_t commits = 0;
  CommitPoint first;  // the bucket's first commit
  CommitPoint last;   // and its last: LsnByTimestamp(last.time) is last.end
};

struct CommitHistory {
  std::vector<CommitBucket> buckets;  // non-empty buckets, oldest first
  // Stopped after `max_commits`: the buckets cover [from, counted_to) only.
  bool truncated = false;
  absl::Time counted_to;
};

class WalArchive {
 public:
  explicit WalArchive(PageStore* store);
  ~WalArchive();

  // Starts a timeline's archive: its WAL begins at `start` (a record boundary for a
  // branch, a segment start for an import). Persisted in the same write as `batch`.
  void InitTimeline(const Timeline& timeline, Lsn start, rocksdb::WriteBatch* batch);

  // Appends WAL bytes at `at`. `at` may be below the archive's end (a resend); the
  // overlap must match what is stored. A gap is refused. Decoding errors other than
  // "need more bytes" are refused (DATA_LOSS) and nothing is stored.
  absl::Status Append(Timeline& timeline, Lsn at, std::string_view bytes, bool sync);

  // The end of contiguous WAL stored for the timeline itself.
  absl::StatusOr<Lsn> End(const Timeline& timeline);
  // Waits until End() >= lsn; DEADLINE_EXCEEDED at `deadline`.
  absl::Status WaitForEnd(const Timeline& timeline, Lsn lsn, absl::Time deadline);
  // Where the timeline's own WAL starts.
  absl::StatusOr<Lsn> Start(const Timeline& timeline);
  // The first record boundary of the timeline's own history: where a compute starts
  // if no WAL followed (the branch point, or the end of an import's checkpoint).
  absl::StatusOr<Lsn> FirstBoundary(const Timeline& timeline);
  // Sets it (import: once the checkpoint record is archived). REQUIRES: <= End().
  absl::Status SetFirstBoundary(const Timeline& timeline, Lsn lsn);

  // WAL bytes [from, to) of the timeline's history (ancestors below its branch
  // point). OUT_OF_RANGE if any part is not archived (pruned, or beyond the end).
  absl::StatusOr<std::string> Read(const Timeline& timeline, Lsn from, Lsn to);

  // The end of the last commit at or before `time` in the timeline's history.
  absl::StatusOr<LsnLookup> LsnByTimestamp(const Timeline& timeline, absl::Time time);

  // The end of the last complete record at or below `lsn` in the timeline's history.
  absl::StatusOr<Lsn> RoundDownToRecordBoundary(const Timeline& timeline, Lsn lsn);

  // The commits of the timeline's history (ancestors below its branch point
  // included) whose time is in [from, to), counted in buckets of `width` aligned to
  // `from`. Cost: one seek of the commit index per timeline of the history plus one
  // step per commit in the range, up to `max_commits` (then `truncated`).
  // REQUIRES: width > 0.
  absl::StatusOr<CommitHistory> History(const Timeline& timeline, absl::Time from, absl::Time to,
                                        absl::Duration width, uint64_t max_commits);
  // The last commit at or below `lsn`, and the first at or above it, in the
  // timeline's history; nullopt if there is none.
  absl::StatusOr<std::optional<CommitPoint>> CommitAtOrBelow(const Timeline& timeline, Lsn lsn);
  absl::StatusOr<std::optional<CommitPoint>> CommitAtOrAbove(const Timeline& timeline, Lsn lsn);

  // Deletes the timeline's own WAL chunks entirely below `before` (GC).
  absl::Status Prune(const Timeline& timeline, Lsn before);

  // The meta-family key of a timeline's archive state.
  static std::string StateKey(const Timeline& timeline);
  // Drops the cached state of a deleted timeline (its stored state is gone). A caller
  // still using the state finishes with its own reference.
  void ForgetTimeline(const TimelineId& id);

 private:
  struct State;  // per-timeline decoding state, loaded lazily
  absl::StatusOr<std::shared_ptr<State>> LoadState(const Timeline& timeline);
  absl::Status ReadOwn(const Timeline& timeline, Lsn from, Lsn to, std::string* out);
  absl::StatusOr<std::optional<std::pair<Lsn, int64_t>>> LastCommitAtOrBelow(const Timeline& t,
                                                                             Lsn lsn);

  PageStore* const store_;
  std::mutex mu_;
  std::condition_variable appended_cv_;                  // with mu_: some archive grew
  std::map<TimelineId, std::shared_ptr<State>> states_;  // GUARDED_BY(mu_)
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_WAL_ARCHIVE_H_
