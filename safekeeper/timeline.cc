#include "safekeeper/timeline.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "safekeeper/safekeeper_metrics.h"

namespace cambium::safekeeper {
namespace {

// The segment to create ahead of the appends once the flush LSN is `flush`: the
// next one, from a quarter into the current one on (Preallocate, Checkpoint).
std::optional<uint64_t> NextSegmentAhead(Lsn flush, uint64_t segment_size) {
  if (flush.SegmentOffset(segment_size) <= segment_size / 4) return std::nullopt;
  return flush.SegmentNo(segment_size) + 1;
}

}  // namespace

Timeline::Timeline(std::unique_ptr<TimelineStorage> storage, const std::string& name)
    : name_(name),
      tenant_(storage->control().tenant),
      timeline_(storage->control().timeline),
      dir_(storage->dir()),
      wal_(&storage->wal()),
      storage_(std::move(storage)),
      acceptor_(storage_.get(), storage_->control().acceptor, name) {}

absl::StatusOr<std::unique_ptr<Timeline>> Timeline::Create(FileSystem* fs, const std::string& dir,
                                                           const std::string& name, TenantId tenant,
                                                           TimelineId timeline, Lsn timeline_start,
                                                           uint64_t segment_size) {
  CAMBIUM_ASSIGN_OR_RETURN(
      std::unique_ptr<TimelineStorage> storage,
      TimelineStorage::Create(fs, dir, tenant, timeline, timeline_start, segment_size));
  LogInfo("timeline_created",
          {{"tenant", tenant}, {"timeline", timeline}, {"timeline_start", timeline_start}});
  return std::unique_ptr<Timeline>(new Timeline(std::move(storage), name));
}

absl::StatusOr<std::unique_ptr<Timeline>> Timeline::Open(FileSystem* fs, const std::string& dir,
                                                         const std::string& name,
                                                         uint64_t segment_size) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<TimelineStorage> storage,
                           TimelineStorage::Open(fs, dir, segment_size));
  return std::unique_ptr<Timeline>(new Timeline(std::move(storage), name));
}

absl::Status Timeline::DeletedError() const {
  return absl::FailedPreconditionError(
      absl::StrFormat("timeline %s/%s was deleted on safekeeper %s; it cannot be written or read "
                      "again",
                      tenant_.ToString(), timeline_.ToString(), name_));
}

absl::Status Timeline::CheckNotDeleted() {
  absl::MutexLock lock(&mu_);
  return deleted_ ? DeletedError() : absl::OkStatus();
}

absl::StatusOr<VoteResponse> Timeline::Vote(const VoteRequest& request) {
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  const Term before = acceptor_.state().term;
  absl::StatusOr<VoteResponse> vote = acceptor_.HandleVote(request);
  if (!vote.ok()) return DiskFullError(name_, dir_, vote.status());
  if (vote.ok() && vote->granted) {
    LogInfo("vote_granted", {{"tenant", tenant_},
                             {"timeline", timeline_},
                             {"term", vote->term},
                             {"previous_term", before},
                             {"flush_lsn", vote->flush_lsn},
                             {"record_end", vote->record_end}});
  }
  return vote;
}

absl::StatusOr<AppendAck> Timeline::AppendStart(const AppendStartRequest& request) {
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  const Lsn flush_before = storage_->flush_lsn();
  scanned_to_ = Lsn();  // an election may truncate the WAL
  absl::StatusOr<AppendAck> ack = acceptor_.HandleAppendStart(request);
  if (!ack.ok()) return DiskFullError(name_, dir_, ack.status());
  if (ack->flush_lsn < flush_before) {
    LogWarning("wal_truncated", {{"tenant", tenant_},
                                 {"timeline", timeline_},
                                 {"term", request.term},
                                 {"from_lsn", ack->flush_lsn},
                                 {"previous_flush_lsn", flush_before}});
  }
  LogInfo("append_stream_started", {{"tenant", tenant_},
                                    {"timeline", timeline_},
                                    {"term", request.term},
                                    {"term_start", request.start_lsn},
                                    {"flush_lsn", ack->flush_lsn},
                                    {"record_end", ack->record_end}});
  return ack;
}

absl::StatusOr<AppendAck> Timeline::AppendData(const AppendDataRequest& request) {
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  // Bytes below the scanned bound may change (a rewritten partial page fills zeros
  // after the last record, and the commit LSN can go X -> fill -> X within this one
  // call): scan again next time.
  if (request.start_lsn < scanned_to_) scanned_to_ = Lsn();
  CAMBIUM_RETURN_IF_ERROR(CheckUnarchivedBound(request));
  const Lsn flush_before = storage_->flush_lsn();
  absl::StatusOr<AppendAck> ack = acceptor_.HandleAppendData(request);
  if (ack.ok() && request.skip_to_start && request.start_lsn > flush_before) {
    LogInfo("wal_skipped", {{"tenant", tenant_},
                            {"timeline", timeline_},
                            {"term", request.term},
                            {"from_lsn", flush_before},
                            {"to_lsn", request.start_lsn}});
  }
  if (!ack.ok() && acceptor_.broken() == ack.status()) {
    LogError("timeline_broken",
             {{"tenant", tenant_}, {"timeline", timeline_}, {"error", ack.status()}});
  }
  if (!ack.ok()) return DiskFullError(name_, dir_, ack.status());
  // Past the first quarter of a segment: the next one is made now, off this path,
  // rather than at the next checkpoint (a second away; a bulk load fills a segment
  // in a fraction of that) or by the append that needs it (a 16 MiB zero fill and
  // two fsyncs, 15-70 ms measured, in the commit path of every safekeeper at once).
  // (From the middle on, appends of a bulk load still reached the segment while it
  // was being made.)
  // (The same rule as CreateNextSegment's: the signal comes exactly when that
  // names a new segment, never at a flush LSN for which it names none.)
  const std::optional<uint64_t> ahead =
      NextSegmentAhead(storage_->flush_lsn(), wal_->segment_size());
  if (preallocation_wanted_ && ahead.has_value() &&
      ahead != NextSegmentAhead(flush_before, wal_->segment_size())) {
    preallocation_wanted_();
  }
  return ack;
}

void Timeline::SetPreallocationWanted(std::function<void()> wanted) {
  absl::MutexLock lock(&mu_);
  preallocation_wanted_ = std::move(wanted);
}

absl::Status Timeline::CreateNextSegment() {
  std::optional<uint64_t> segno;
  {
    absl::MutexLock lock(&mu_);
    if (deleted_ || !acceptor_.broken().ok()) return absl::OkStatus();
    segno = NextSegmentAhead(storage_->flush_lsn(), wal_->segment_size());
  }
  // Without the mutex: appends go on meanwhile. On a full disk this is retried
  // every checkpoint until space is back.
  return segno.has_value() ? wal_->CreateSegment(*segno) : absl::OkStatus();
}

absl::Status Timeline::Preallocate() {
  absl::MutexLock housekeeping(&maintenance_mu_);
  return DiskFullError(name_, dir_, CreateNextSegment());
}

void Timeline::SetMaxUnarchivedWal(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  max_unarchived_wal_ = bytes;
}

absl::Status Timeline::CheckUnarchivedBound(const AppendDataRequest& request) {
  const Lsn end = request.start_lsn + request.data.size();
  // Only new WAL at the head waits: bytes already stored here (Postgres rewriting
  // its last page) and committed WAL a lagging safekeeper catches up on do not
  // grow what the pageserver has yet to archive.
  if (max_unarchived_wal_ == 0 || end <= storage_->flush_lsn() || end <= request.commit_lsn) {
    return absl::OkStatus();
  }
  const AcceptorState& state = acceptor_.state();
  const Lsn base = std::max({state.archived_lsn, state.timeline_start, storage_->wal_start()});
  if (end <= base + max_unarchived_wal_) {
    if (std::exchange(backpressured_, false)) {
      LogInfo("wal_backpressure_ended",
              {{"tenant", tenant_}, {"timeline", timeline_}, {"archived_lsn", base}});
    }
    return absl::OkStatus();
  }
  const absl::Status refused = absl::ResourceExhaustedError(absl::StrFormat(
      "safekeeper %s: WAL of timeline %s/%s up to %s would be %u bytes past what the pageserver "
      "has archived (%s; with an object store, uploaded), and WAL not archived is bounded by "
      "--max-unarchived-wal %u: new WAL waits until the pageserver catches up (its status and "
      "remote lag say why it lags); nothing past the commit LSN is acknowledged meanwhile",
      name_, tenant_.ToString(), timeline_.ToString(), end.ToString(), end - base, base.ToString(),
      max_unarchived_wal_));
  SafekeeperMetrics::Get().wal_backpressure_refusals.Increment();
  if (!std::exchange(backpressured_, true)) {
    LogWarning("wal_backpressure", {{"tenant", tenant_},
                                    {"timeline", timeline_},
                                    {"archived_lsn", base},
                                    {"end_lsn", end},
                                    {"max_unarchived_wal", max_unarchived_wal_}});
  }
  return refused;
}

void Timeline::ReportArchived(Lsn lsn) {
  absl::MutexLock lock(&mu_);
  acceptor_.HandleArchived(lsn);
  // A proposer still past the bound is refused again at its next attempt (within
  // a second); one that went away leaves no stale "backpressured" behind.
  backpressured_ = false;
}

Lsn Timeline::VisibleLsn() const {
  return std::min(acceptor_.state().commit_lsn, storage_->flush_lsn());
}

absl::StatusOr<Lsn> Timeline::CommittedRecordLsn() {
  const Lsn bound = VisibleLsn();
  if (bound != scanned_to_) {
    CAMBIUM_ASSIGN_OR_RETURN(const Lsn record, storage_->LastRecordEnd(bound));
    // Complete records below a commit LSN stay committed, whatever the commit
    // LSN does later (it moves back only to a zero-padding fill after them).
    committed_record_ = std::max(committed_record_, record);
    scanned_to_ = bound;
  }
  return committed_record_;
}

absl::StatusOr<TimelineStatus> Timeline::Status() {
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  const AcceptorState& state = acceptor_.state();
  TimelineStatus status;
  status.term = state.term;
  status.history = state.history;
  status.timeline_start = state.timeline_start;
  status.wal_start = storage_->wal_start();
  status.flush_lsn = storage_->flush_lsn();
  CAMBIUM_ASSIGN_OR_RETURN(status.record_end, storage_->LastRecordEnd(Lsn::Max()));
  status.commit_lsn = state.commit_lsn;
  CAMBIUM_ASSIGN_OR_RETURN(status.committed_record_lsn, CommittedRecordLsn());
  status.archived_lsn = state.archived_lsn;
  status.backpressured = backpressured_;
  return status;
}

Timeline::Positions Timeline::MetricPositions() {
  if (mu_.TryLock()) {
    if (!deleted_) {
      metric_flush_.store(storage_->flush_lsn().value(), std::memory_order_relaxed);
      metric_commit_.store(acceptor_.state().commit_lsn.value(), std::memory_order_relaxed);
      metric_archived_.store(acceptor_.state().archived_lsn.value(), std::memory_order_relaxed);
      metric_backpressured_.store(backpressured_, std::memory_order_relaxed);
    }
    mu_.Unlock();
  }
  return Positions{.flush = Lsn(metric_flush_.load(std::memory_order_relaxed)),
                   .commit = Lsn(metric_commit_.load(std::memory_order_relaxed)),
                   .archived = Lsn(metric_archived_.load(std::memory_order_relaxed)),
                   .backpressured = metric_backpressured_.load(std::memory_order_relaxed)};
}

absl::StatusOr<Timeline::ReadWindow> Timeline::ReadLimit(Lsn start, Lsn end, Term term) {
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  if (start < storage_->wal_start()) {
    return absl::OutOfRangeError(absl::StrFormat(
        "WAL below %s is no longer on %s (the timeline starts at %s; archived up to %s)",
        storage_->wal_start().ToString(), name_, acceptor_.state().timeline_start.ToString(),
        acceptor_.state().archived_lsn.ToString()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(const Lsn committed, CommittedRecordLsn());
  ReadWindow window{committed, VisibleLsn(), committed, committed};
  if (end.valid()) {
    const bool recovery = term != 0 && term == acceptor_.state().term;
    if (recovery) {
      window.bound = storage_->flush_lsn();
      CAMBIUM_ASSIGN_OR_RETURN(window.verify_to, storage_->LastRecordEnd(window.bound));
      window.verify_to = std::max(window.verify_to, committed);
    }
    window.limit = std::min(end, window.bound);
  }
  return window;
}

absl::Status Timeline::Read(Lsn lsn, uint64_t size, Term term, std::string* out) {
  // Committed records never change: no lock needed for the I/O.
  if (term == 0) return wal_->Read(lsn, size, out);
  absl::MutexLock lock(&mu_);
  if (deleted_) return DeletedError();
  if (acceptor_.state().term != term || lsn + size > storage_->flush_lsn()) {
    return absl::AbortedError(
        absl::StrFormat("the WAL on %s changed during the read (term %u, flush LSN %s)", name_,
                        acceptor_.state().term, storage_->flush_lsn().ToString()));
  }
  return storage_->wal().Read(lsn, size, out);
}

void Timeline::WaitForVisibleChange(Lsn seen, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || deleted_ || VisibleLsn() != seen;
  };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
}

absl::Status Timeline::CheckpointLocked() {
  absl::Status first = acceptor_.Checkpoint();
  if (!acceptor_.broken().ok()) return first;
  // Segments wholly below both the archived LSN and the persisted commit LSN
  // (a complete record) are no longer needed.
  const Lsn removable =
      std::min(acceptor_.state().archived_lsn, storage_->control().acceptor.commit_lsn);
  absl::Status removed = storage_->RemoveSegmentsBelow(removable);
  if (first.ok()) first = removed;
  return first;
}

absl::Status Timeline::Checkpoint() {
  absl::MutexLock housekeeping(&maintenance_mu_);
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (deleted_ || !acceptor_.broken().ok()) return absl::OkStatus();
    status = CheckpointLocked();
  }
  // The next segment before appends need it (a 16 MiB zero fill), as Preallocate.
  absl::Status created = CreateNextSegment();
  if (status.ok()) status = created;
  return DiskFullError(name_, dir_, status);
}

void Timeline::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

bool Timeline::shut_down() {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

void Timeline::Delete() {
  {
    absl::MutexLock lock(&mu_);
    deleted_ = true;
  }
  // A Checkpoint that was creating a segment has finished; later ones do nothing.
  absl::MutexLock housekeeping(&maintenance_mu_);
  wal_->CloseAll();
}

Lsn Timeline::KnownBoundaryAtOrBelow(Lsn lsn) {
  absl::MutexLock lock(&mu_);
  Lsn best = storage_->ScanStart(lsn);
  if (committed_record_ <= lsn && committed_record_ > best) best = committed_record_;
  return best;
}

}  // namespace cambium::safekeeper
