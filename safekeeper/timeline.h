// Timeline: one timeline on one safekeeper: the Acceptor state machine over its
// TimelineStorage, behind a mutex, plus what readers need.
//
// The gRPC service calls Vote / AppendStart / AppendData / ReportArchived /
// Status and the read functions; the Safekeeper's maintenance thread calls
// Checkpoint about once a second (lazy persistence of the commit and archived
// LSNs, removal of archived segments, creation of the next segment ahead of time).
//
// Readers get committed WAL: complete records up to the commit LSN
// (committed_record_lsn). Bytes after the last complete record may still be an
// older version of the page or an incomplete record that a new term replaces, so
// they are only served to a proposer that names its term (recovery reads).
//
// A full disk refuses the request that needed space (RESOURCE_EXHAUSTED naming
// the safekeeper and the directory) and changes nothing durable; the timeline
// goes on, and the maintenance thread keeps trying to create the next segment.
// A failed fsync stops the timeline until a restart (see acceptor.h).
//
// Delete() ends the timeline on this safekeeper: every later call fails with
// FAILED_PRECONDITION ("... was deleted"), followers wake up, maintenance stops
// and the segment files are closed; the Safekeeper removes the files.
//
// Thread-safety: thread-safe. Appends hold the mutex across pwrite + fdatasync
// (one writer per timeline); committed reads do file I/O without it.
#ifndef CAMBIUM_SAFEKEEPER_TIMELINE_H_
#define CAMBIUM_SAFEKEEPER_TIMELINE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "safekeeper/acceptor.h"
#include "safekeeper/timeline_storage.h"

namespace cambium::safekeeper {

struct TimelineStatus {
  Term term = 0;
  TermHistory history;
  Lsn timeline_start;
  Lsn wal_start;  // lowest stored LSN
  Lsn flush_lsn;
  Lsn record_end;            // end of the last complete record (WAL below it is final)
  Lsn commit_lsn;            // as learned from the proposer
  Lsn committed_record_lsn;  // what readers get: complete records below commit_lsn
  Lsn archived_lsn;
  // New WAL is refused: the timeline holds --max-unarchived-wal beyond archived_lsn.
  bool backpressured = false;
};

class Timeline {
 public:
  // `name` is the safekeeper's id, for messages.
  static absl::StatusOr<std::unique_ptr<Timeline>> Create(FileSystem* fs, const std::string& dir,
                                                          const std::string& name, TenantId tenant,
                                                          TimelineId timeline, Lsn timeline_start,
                                                          uint64_t segment_size);
  static absl::StatusOr<std::unique_ptr<Timeline>> Open(FileSystem* fs, const std::string& dir,
                                                        const std::string& name,
                                                        uint64_t segment_size);

  TenantId tenant() const { return tenant_; }
  TimelineId timeline() const { return timeline_; }

  absl::StatusOr<VoteResponse> Vote(const VoteRequest& request);
  absl::StatusOr<AppendAck> AppendStart(const AppendStartRequest& request);
  absl::StatusOr<AppendAck> AppendData(const AppendDataRequest& request);
  void ReportArchived(Lsn lsn);
  absl::StatusOr<TimelineStatus> Status();
  // Flush, commit and archived LSNs for metrics, and whether the last append was
  // refused for the unarchived bound, without waiting behind an append's fdatasync:
  // when the mutex is busy, the values the previous call read.
  struct Positions {
    Lsn flush;
    Lsn commit;
    Lsn archived;
    bool backpressured = false;
  };
  Positions MetricPositions();

  struct ReadWindow {
    Lsn limit;    // a read may go up to here now
    Lsn visible;  // min(commit LSN, local flush LSN) it was computed for
                  // (see WaitForVisibleChange)
    // WAL below this is complete records here (the committed records, or for a
    // recovery read the last complete record): every byte below it must verify.
    Lsn verify_to;
    // Bytes may be read up to here to verify the record that straddles `limit`.
    Lsn bound;
  };
  // How far a read from `start` may go now. end == Lsn(): committed records.
  // Otherwise min(end, committed records), or min(end, flush LSN) when `term` is
  // this safekeeper's term (a proposer's recovery read: it vouches the bytes are
  // its log's). OUT_OF_RANGE if `start` is below the stored WAL.
  absl::StatusOr<ReadWindow> ReadLimit(Lsn start, Lsn end, Term term);
  // Reads [lsn, lsn + size) below a limit returned by ReadLimit. Reads past the
  // committed records (term != 0) fail with ABORTED if the WAL was truncated or
  // the term changed meanwhile.
  absl::Status Read(Lsn lsn, uint64_t size, Term term, std::string* out);
  // Waits until min(commit LSN, local flush LSN) is no longer `seen` (or timeout, or
  // Shutdown): committed WAL may have become readable here.
  void WaitForVisibleChange(Lsn seen, absl::Duration timeout);

  // Lazy persistence and segment housekeeping. Every step is tried even if an
  // earlier one failed (a full disk must not stop the next segment's creation
  // once space is back); returns the first failure.
  absl::Status Checkpoint();
  // Wakes readers waiting for commits; they end their streams.
  void Shutdown();
  bool shut_down();
  // Marks the timeline deleted (see above) and waits for a running Checkpoint.
  // After it returns nothing creates files in the timeline's directory.
  void Delete();
  // OK, or the FAILED_PRECONDITION every call returns once deleted.
  absl::Status CheckNotDeleted();
  // The decoding start for verified reads (wal_reader.h): the highest LSN known
  // here to be a record boundary at or below `lsn`, never below the stored WAL.
  Lsn KnownBoundaryAtOrBelow(Lsn lsn);
  // Backpressure (SafekeeperOptions::max_unarchived_wal): AppendData refuses new,
  // uncommitted WAL ending more than `bytes` past the archived LSN. 0: no bound.
  void SetMaxUnarchivedWal(uint64_t bytes);
  // Called (under the timeline's lock: it must only signal) when an append takes
  // the flush LSN past the first quarter of a segment, so that the next segment is created
  // by Preallocate soon rather than by an append that needs it. Default: none.
  void SetPreallocationWanted(std::function<void()> wanted);
  // Creates the next segment if the flush LSN is past a quarter of its segment
  // (also done by Checkpoint). Runs without blocking appends.
  absl::Status Preallocate();
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  WalStorage* wal() const { return wal_; }

 private:
  Timeline(std::unique_ptr<TimelineStorage> storage, const std::string& name);
  absl::StatusOr<Lsn> CommittedRecordLsn() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // min(commit LSN, local flush LSN): how far committed WAL may be readable here.
  Lsn VisibleLsn() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeletedError() const;
  // RESOURCE_EXHAUSTED if `request` brings new WAL beyond the unarchived bound.
  absl::Status CheckUnarchivedBound(const AppendDataRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The steps of Checkpoint that need the mutex.
  absl::Status CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates the segment after the flush LSN's once that is past its first quarter
  // (nothing for a deleted or broken timeline); the zero fill runs without mu_.
  absl::Status CreateNextSegment() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maintenance_mu_)
      ABSL_LOCKS_EXCLUDED(mu_);

  const std::string name_;
  const TenantId tenant_;
  const TimelineId timeline_;
  const std::string dir_;
  WalStorage* const wal_;  // owned by storage_; thread-safe for reads
  // Held across a Checkpoint (whose segment creation runs without mu_), and by
  // Delete to wait for it.
  absl::Mutex maintenance_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  std::unique_ptr<TimelineStorage> storage_ ABSL_GUARDED_BY(mu_);
  Acceptor acceptor_ ABSL_GUARDED_BY(mu_);
  // committed_record_ is the committed record LSN computed by scanning up to
  // scanned_to_ = min(commit LSN, local flush LSN). Reset when an append or an
  // election touches bytes below it (the same bound can then hold new records).
  Lsn scanned_to_ ABSL_GUARDED_BY(mu_);
  Lsn committed_record_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool deleted_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t max_unarchived_wal_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> preallocation_wanted_ ABSL_GUARDED_BY(mu_);
  // Whether the last append was refused by the bound (logged once per episode;
  // cleared by a report of the archived LSN).
  bool backpressured_ ABSL_GUARDED_BY(mu_) = false;
  // MetricPositions' last reading.
  std::atomic<uint64_t> metric_flush_{0};
  std::atomic<uint64_t> metric_commit_{0};
  std::atomic<uint64_t> metric_archived_{0};
  std::atomic<bool> metric_backpressured_{false};
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_TIMELINE_H_
