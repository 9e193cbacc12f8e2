// TimelineStorage: AcceptorStorage on disk for one timeline: WAL segments
// (WalStorage) plus the control file, and startup recovery.
//
// Appends are acknowledged once durable: pwrite, then fdatasync. The control file
// is not rewritten per append (that would double the fsyncs on the commit path):
// term and history changes are persisted eagerly by the Acceptor, the commit LSN
// lazily. At startup the end of WAL is recovered by decoding forward with the
// Postgres WAL decoder from the lowest stored LSN:
//   - decoding must get at least to the persisted commit LSN (a record end that was
//     durable when it was written); stopping below it is corruption and opening
//     fails, naming the segment;
//   - after it, decoding stops at the first incomplete or invalid record (a torn
//     or unfinished last write): that is the recovered flush LSN, and the bytes
//     after it are zeroed. They were at most an incomplete record and the zero
//     padding of its page, which Postgres never relied on (it only waits for the
//     flush of complete records), and the proposer resends from there.
// See docs/safekeeper.md for the full argument.
//
// Failures follow the AcceptorStorage contract: RESOURCE_EXHAUSTED (a full disk)
// only when nothing durable changed and the page cache is still truthful, so
// the acceptor can refuse the request and go on; anything else (a failed
// fdatasync/fsync above all) means the timeline must stop.
//
// Thread-safety: not thread-safe except wal().Read/ScanRecords; Timeline holds its
// mutex around every other call.
#ifndef CAMBIUM_SAFEKEEPER_TIMELINE_STORAGE_H_
#define CAMBIUM_SAFEKEEPER_TIMELINE_STORAGE_H_

#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "safekeeper/acceptor.h"
#include "safekeeper/control_file.h"
#include "safekeeper/file_system.h"
#include "safekeeper/wal_storage.h"

namespace cambium::safekeeper {

class TimelineStorage : public AcceptorStorage {
 public:
  // Creates `dir` (its parent must exist) with a fresh control file.
  static absl::StatusOr<std::unique_ptr<TimelineStorage>> Create(
      FileSystem* fs, const std::string& dir, TenantId tenant, TimelineId timeline,
      Lsn timeline_start, uint64_t segment_size = kDefaultWalSegmentSize);
  // Opens an existing timeline directory and recovers the end of its WAL.
  static absl::StatusOr<std::unique_ptr<TimelineStorage>> Open(
      FileSystem* fs, const std::string& dir, uint64_t segment_size = kDefaultWalSegmentSize);

  // The control file as last written.
  const ControlFileData& control() const { return control_; }
  const std::string& dir() const { return wal_.dir(); }
  WalStorage& wal() { return wal_; }
  Lsn wal_start() const { return control_.wal_start; }

  // AcceptorStorage.
  Lsn flush_lsn() const override { return flush_; }
  Lsn written_end() const override { return written_end_; }
  absl::Status PersistState(const AcceptorState& state) override;
  absl::Status WriteDurable(Lsn lsn, std::string_view bytes) override;
  absl::StatusOr<std::string> Read(Lsn lsn, uint64_t size) override;
  absl::Status Truncate(Lsn lsn, const AcceptorState& state) override;
  absl::StatusOr<Lsn> LastRecordEnd(Lsn limit) override;
  absl::Status StartWalAt(Lsn lsn, const AcceptorState& state) override;

  // The highest LSN at or below `limit` where decoding can start: a record
  // boundary known here (the timeline start, the persisted commit LSN, a record
  // end found before) or the lowest stored LSN, whichever is highest.
  Lsn ScanStart(Lsn limit) const;

  // Removes the segments that end at or below `lsn` (the control file's wal_start
  // moves first; a removal that failed after it is retried on the next call).
  absl::Status RemoveSegmentsBelow(Lsn lsn);

 private:
  TimelineStorage(FileSystem* fs, const std::string& dir, uint64_t segment_size,
                  ControlFileData control);
  absl::Status Recover();
  absl::Status WriteControl(const ControlFileData& next);
  void NoteBoundary(Lsn lsn);

  FileSystem* const fs_;
  WalStorage wal_;
  ControlFileData control_;
  Lsn flush_;
  // Highest byte ever written. Invariant: written_end_ >= flush_ (both start
  // equal; WriteDurable raises it before the write, flush_ only after the sync;
  // Truncate sets both).
  Lsn written_end_;
  // Recently found ends of complete records at or below flush_ (the WAL below
  // each is final here), so that decoding resumes near where it is needed: the
  // last record end and the last committed one are usually both in it.
  std::set<Lsn> boundaries_;
  uint64_t recovery_cut_bytes_ = 0;  // non-zero bytes cleared at startup (logged)
  // A failed control file write that was not a full disk: every later write
  // fails with it (the acceptor breaks at the next append).
  absl::Status failed_;
  // Segments below control_.wal_start may still exist (their removal failed, or
  // a crash interrupted it: checked once after opening).
  bool removal_pending_ = true;
};

// "<data dir>/<tenant hex>/<timeline hex>"
std::string TimelineDir(const std::string& data_dir, TenantId tenant, TimelineId timeline);

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_TIMELINE_STORAGE_H_
