// Acceptor: the safekeeper side of election and fencing, as a state machine.
//
// One Acceptor per timeline. It holds the promised term, the term history of the
// WAL it stores, and what it knows of the commit LSN, and decides every request:
//
//   Vote(term)          granted iff term > every term seen; the term is durable
//                       before the answer. The answer carries the flush LSN, the
//                       end of the last complete WAL record, commit LSN and history.
//   AppendStart(term,   from the proposer elected in `term` (refused if older than
//     history, start)   the promised term): the acceptor truncates its WAL where it
//                       stops agreeing with the proposer's history, then adopts that
//                       history. Order on disk: term + clamped hints, truncation,
//                       new history, so a crash in between never labels old-term
//                       bytes with the new history.
//   AppendData(term,    accepted only in the promised term, on the newest stream
//     stream, lsn,      (the token its AppendStart returned: a superseded stream's
//     bytes)            late messages are refused with ABORTED, so every applied
//                       message comes from one FIFO stream). Bytes below the
//                       timeline start are ignored; a start above
//                       the flush LSN is a gap (OUT_OF_RANGE); bytes below the flush
//                       LSN must equal the stored ones except where those are zero
//                       (Postgres rewrites its zero-padded last page), otherwise the
//                       WAL diverged (FAILED_PRECONDITION). Acknowledged only once
//                       durable.
//                       The commit LSN is learned from the message, but a zero byte
//                       filled below the known commit LSN first pulls it back there:
//                       the proposer's commit LSN covered the old (zero) version of
//                       those bytes, not the new records written into them.
//                       With skip_to_start (a rebuilt or long-lagging acceptor whose
//                       peers removed the WAL it lacks) the acceptor drops its WAL and
//                       stores WAL from start_lsn on: start_lsn must be above its flush
//                       LSN, a record boundary at or below the message's commit LSN
//                       (so all WAL below is committed, and the proposer vouches that
//                       it was archived). It is then exactly an acceptor that trimmed
//                       its WAL below start_lsn.
//
// Storage failures. RESOURCE_EXHAUSTED (a full disk) is a refusal: the storage
// promises that nothing durable changed, so the request is refused, the state
// stays exactly as durable as before and the next request may succeed once space
// is freed. Any other failure (a failed fsync above all: the page cache no
// longer says what is on disk) breaks the acceptor until a restart recovers it
// from the disk.
//
// All I/O goes through AcceptorStorage, so the same code runs on disk (Timeline) and
// in the seeded simulation (tests/safekeeper/simulation_test.cc). The commit LSN
// and archived LSN are persisted lazily (Checkpoint); only term and history changes
// are persisted eagerly. The persisted commit LSN is rounded down to the end of a
// complete record: a later fill of zero padding may put new, uncommitted records
// above the in-memory commit LSN, but never below a complete record.
//
// Thread-safety: not thread-safe; the owner serializes calls (Timeline holds a mutex).
#ifndef CAMBIUM_SAFEKEEPER_ACCEPTOR_H_
#define CAMBIUM_SAFEKEEPER_ACCEPTOR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/lsn.h"
#include "safekeeper/term_history.h"

namespace cambium::safekeeper {

// What an acceptor persists about itself (the storage adds its own fields).
struct AcceptorState {
  Term term = 0;  // the highest term voted for or appended in
  TermHistory history;
  Lsn timeline_start;  // the timeline's WAL begins here (a branch point or segment start)
  Lsn commit_lsn;      // learned from proposers; persisted lazily
  Lsn archived_lsn;    // reported by the pageserver; persisted lazily
  bool operator==(const AcceptorState&) const = default;
};

// Durable storage of one acceptor's WAL and state. Every mutating call may fail
// with RESOURCE_EXHAUSTED only if nothing durable changed (the disk was full
// before anything was written where it counts; a refused write may leave bytes
// above the flush LSN, see written_end()); any other failure may have left a
// partial change.
class AcceptorStorage {
 public:
  virtual ~AcceptorStorage() = default;
  // End of durable WAL.
  virtual Lsn flush_lsn() const = 0;
  // End of everything written, acknowledged or not: bytes in
  // [flush_lsn(), written_end()) are what writes that failed or were refused may
  // have left (they may reach the disk at any time).
  virtual Lsn written_end() const = 0;
  // Makes `state` durable before returning.
  virtual absl::Status PersistState(const AcceptorState& state) = 0;
  // Writes `bytes` at `lsn` and makes them durable; then flush_lsn() =
  // max(flush_lsn(), lsn + size). REQUIRES: lsn <= flush_lsn().
  virtual absl::Status WriteDurable(Lsn lsn, std::string_view bytes) = 0;
  // The stored bytes in [lsn, lsn + size). REQUIRES: lsn + size <= flush_lsn().
  virtual absl::StatusOr<std::string> Read(Lsn lsn, uint64_t size) = 0;
  // Persists `state`, then durably removes the WAL at and above `lsn` (flush_lsn()
  // and written_end() become lsn). REQUIRES: lsn <= flush_lsn(), lsn is a record
  // boundary or the flush LSN.
  virtual absl::Status Truncate(Lsn lsn, const AcceptorState& state) = 0;
  // The end of the last complete WAL record at or below min(limit, flush_lsn()).
  virtual absl::StatusOr<Lsn> LastRecordEnd(Lsn limit) = 0;
  // Persists `state`, then the stored WAL begins at `lsn`: flush_lsn() and
  // written_end() become lsn, the WAL below may be removed. REQUIRES:
  // flush_lsn() < lsn, lsn is a record boundary of the log (the WAL below it is
  // committed and archived).
  virtual absl::Status StartWalAt(Lsn lsn, const AcceptorState& state) = 0;
};

struct VoteRequest {
  Term term = 0;
  Lsn timeline_start;
};

struct VoteResponse {
  bool granted = false;
  Term term = 0;  // the acceptor's term after the request
  Lsn flush_lsn;
  Lsn record_end;  // end of the last complete record at or below flush_lsn
  Lsn commit_lsn;  // rounded down to the end of a complete record
  TermHistory history;
};

struct AppendStartRequest {
  Term term = 0;
  TermHistory history;  // the proposer's; its last entry is (term, start_lsn)
  Lsn start_lsn;
  Lsn timeline_start;
};

struct AppendDataRequest {
  Term term = 0;
  uint64_t stream = 0;  // the token of the stream's AppendStart
  Lsn start_lsn;
  std::string_view data;
  Lsn commit_lsn;  // what the proposer knows to be committed
  // The acceptor's WAL ends below every other copy: it starts afresh at
  // start_lsn (see HandleAppendData).
  bool skip_to_start = false;
};

struct AppendAck {
  Term term = 0;
  Lsn flush_lsn;
  Lsn commit_lsn;
  // AppendStart only: the token later AppendData must carry, and the end of the
  // last complete record. WAL below it is final; above it the acceptor may hold an
  // older version (zero padding Postgres has filled since), so a new stream
  // resends from there.
  uint64_t stream = 0;
  Lsn record_end;
};

class Acceptor {
 public:
  // `state` is what the storage recovered. REQUIRES: storage outlives this.
  Acceptor(AcceptorStorage* storage, AcceptorState state, std::string name = "safekeeper");

  absl::StatusOr<VoteResponse> HandleVote(const VoteRequest& request);
  absl::StatusOr<AppendAck> HandleAppendStart(const AppendStartRequest& request);
  absl::StatusOr<AppendAck> HandleAppendData(const AppendDataRequest& request);
  // The pageserver archived WAL up to `lsn` (persisted lazily).
  void HandleArchived(Lsn lsn);

  // Persists the lazily kept fields if they changed.
  absl::Status Checkpoint();

  const AcceptorState& state() const { return state_; }
  Lsn flush_lsn() const { return storage_->flush_lsn(); }
  // OK, or the sticky error of a failed write/sync/persist (not of a full disk).
  const absl::Status& broken() const { return broken_; }

 private:
  absl::Status CheckUsable() const;
  absl::Status CheckTimelineStart(Lsn timeline_start) const;
  // Persists `on_disk` (= ForDisk(next)); on success `next` becomes the state, on
  // failure the acceptor breaks.
  absl::Status Persist(const AcceptorState& next, AcceptorState on_disk);
  // FAILED_PRECONDITION: `term` is older than the promised term (fenced).
  absl::Status StaleTerm(Term term) const;
  // `state` as persisted: its commit LSN rounded down to a complete record.
  absl::StatusOr<AcceptorState> ForDisk(const AcceptorState& state);
  // Compares `data` with the stored bytes below the flush LSN. Sets *fill_at to
  // the first stored zero that `data` replaces (Lsn::Max() if none).
  absl::Status CheckOverlap(Lsn lsn, std::string_view data, Lsn* fill_at);
  // Breaks the acceptor with `status`, unless it is a full disk (a refusal that
  // changed nothing durable). Returns `status`.
  absl::Status Break(absl::Status status);
  // storage_->LastRecordEnd(Lsn::Max()).
  absl::StatusOr<Lsn> RecordEnd();
  // The skip_to_start part of HandleAppendData.
  absl::Status SkipTo(const AppendDataRequest& request);

  AcceptorStorage* const storage_;
  const std::string name_;
  AcceptorState state_;
  AcceptorState persisted_;
  absl::Status broken_;
  uint64_t stream_ = 0;  // token of the newest AppendStart (not persisted)
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_ACCEPTOR_H_
