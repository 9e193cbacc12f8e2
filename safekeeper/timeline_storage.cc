#include "safekeeper/timeline_storage.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "safekeeper/safekeeper_metrics.h"

namespace cambium::safekeeper {

std::string TimelineDir(const std::string& data_dir, TenantId tenant, TimelineId timeline) {
  return absl::StrFormat("%s/%s/%s", data_dir, tenant.ToString(), timeline.ToString());
}

TimelineStorage::TimelineStorage(FileSystem* fs, const std::string& dir, uint64_t segment_size,
                                 ControlFileData control)
    : fs_(fs),
      wal_(fs, dir, segment_size),
      control_(std::move(control)),
      flush_(control_.wal_start),
      written_end_(flush_) {}

absl::StatusOr<std::unique_ptr<TimelineStorage>> TimelineStorage::Create(
    FileSystem* fs, const std::string& dir, TenantId tenant, TimelineId timeline,
    Lsn timeline_start, uint64_t segment_size) {
  CAMBIUM_RETURN_IF_ERROR(fs->CreateDir(dir));
  ControlFileData control;
  control.tenant = tenant;
  control.timeline = timeline;
  control.acceptor.timeline_start = timeline_start;
  control.acceptor.commit_lsn = timeline_start;
  control.wal_start = timeline_start;
  control.flush_lsn = timeline_start;
  absl::Status written = WriteControlFile(fs, dir + "/" + kControlFileName, control);
  if (absl::IsResourceExhausted(written)) {
    // A full disk: nothing was promised; leave nothing behind either.
    fs->RemoveDir(dir).IgnoreError();
    return written;
  }
  CAMBIUM_RETURN_IF_ERROR(written);
  // The new directory entry itself must survive a crash.
  CAMBIUM_RETURN_IF_ERROR(SyncFailure(fs->SyncDir(dir.substr(0, dir.rfind('/')))));
  return std::unique_ptr<TimelineStorage>(
      new TimelineStorage(fs, dir, segment_size, std::move(control)));
}

absl::StatusOr<std::unique_ptr<TimelineStorage>> TimelineStorage::Open(FileSystem* fs,
                                                                       const std::string& dir,
                                                                       uint64_t segment_size) {
  CAMBIUM_ASSIGN_OR_RETURN(ControlFileData control,
                           ReadControlFile(fs, dir + "/" + kControlFileName));
  const std::string expected =
      absl::StrFormat("%s/%s", control.tenant.ToString(), control.timeline.ToString());
  if (dir.size() < expected.size() ||
      dir.compare(dir.size() - expected.size(), expected.size(), expected) != 0) {
    return absl::DataLossError(
        absl::StrFormat("control file %s/%s belongs to tenant/timeline %s, not to this directory",
                        dir, kControlFileName, expected));
  }
  std::unique_ptr<TimelineStorage> storage(
      new TimelineStorage(fs, dir, segment_size, std::move(control)));
  CAMBIUM_RETURN_IF_ERROR(storage->Recover());
  return storage;
}

absl::Status TimelineStorage::Recover() {
  const Lsn committed = control_.acceptor.commit_lsn;
  const ScanResult scan = wal_.ScanRecords(control_.wal_start, Lsn::Max());
  if (scan.end < committed) {
    return absl::DataLossError(absl::StrFormat(
        "WAL segment %s of timeline %s is damaged: WAL up to %s was durable and committed, but "
        "it decodes only up to %s (%s). Refusing to start rather than drop committed WAL; see "
        "docs/safekeeper.md, \"A damaged timeline\"",
        wal_.SegmentPathFor(scan.end), control_.timeline.ToString(), committed.ToString(),
        scan.end.ToString(), scan.reason.message()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(recovery_cut_bytes_, wal_.CutTail(scan.end));
  // Segments whose creation a crash interrupted would hold their space forever.
  CAMBIUM_RETURN_IF_ERROR(wal_.RemoveTemporaryFiles());
  flush_ = scan.end;
  written_end_ = scan.end;
  NoteBoundary(scan.end);
  LogInfo("timeline_recovered",
          {{"tenant", control_.tenant},
           {"timeline", control_.timeline},
           {"term", control_.acceptor.term},
           {"flush_lsn", flush_},
           {"commit_lsn", committed},
           {"flush_hint", control_.flush_lsn},
           {"cut_bytes", recovery_cut_bytes_},
           {"stop", scan.reason.ok() ? std::string("limit") : std::string(scan.reason.message())}});
  return absl::OkStatus();
}

absl::Status TimelineStorage::WriteControl(const ControlFileData& next) {
  CAMBIUM_RETURN_IF_ERROR(failed_);
  absl::Status written = WriteControlFile(fs_, dir() + "/" + kControlFileName, next);
  if (absl::IsResourceExhausted(written)) return written;  // the old file is intact
  if (!written.ok()) {
    // Which control file is durable is no longer known.
    failed_ = written;
    return written;
  }
  control_ = next;
  return absl::OkStatus();
}

absl::Status TimelineStorage::PersistState(const AcceptorState& state) {
  ControlFileData next = control_;
  next.acceptor = state;
  next.flush_lsn = flush_;
  return WriteControl(next);
}

absl::Status TimelineStorage::WriteDurable(Lsn lsn, std::string_view bytes) {
  CAMBIUM_RETURN_IF_ERROR(failed_);
  const SafekeeperMetrics& m = SafekeeperMetrics::Get();
  const Lsn end = lsn + bytes.size();
  written_end_ = std::max(written_end_, end);
  {
    metrics::ScopedTimer timer(m.wal_append_seconds);
    CAMBIUM_RETURN_IF_ERROR(wal_.Write(lsn, bytes));
    CAMBIUM_RETURN_IF_ERROR(wal_.Sync());
  }
  m.wal_appended_bytes.Increment(bytes.size());
  flush_ = std::max(flush_, end);
  return absl::OkStatus();
}

absl::StatusOr<std::string> TimelineStorage::Read(Lsn lsn, uint64_t size) {
  std::string out;
  CAMBIUM_RETURN_IF_ERROR(wal_.Read(lsn, size, &out));
  return out;
}

absl::Status TimelineStorage::Truncate(Lsn lsn, const AcceptorState& state) {
  // The control file first: a crash after it and before the WAL is cut recovers
  // the old WAL under the old history (the caller persists the new one after).
  ControlFileData next = control_;
  next.acceptor = state;
  next.flush_lsn = std::min(control_.flush_lsn, lsn);
  // A full disk here refuses the truncation with nothing changed.
  CAMBIUM_RETURN_IF_ERROR(WriteControl(next));
  // From here on the control file has changed: no failure may look like a
  // harmless refusal (zeroing overwrites allocated blocks, so it needs no space).
  CAMBIUM_RETURN_IF_ERROR(SyncFailure(wal_.Truncate(lsn, written_end_)));
  flush_ = lsn;
  written_end_ = lsn;
  boundaries_.erase(boundaries_.upper_bound(lsn), boundaries_.end());
  return absl::OkStatus();
}

Lsn TimelineStorage::ScanStart(Lsn limit) const {
  // Decoding must start where every byte below is a complete record on this
  // acceptor: the timeline start, the persisted commit LSN, a record end found
  // before. (Not a term start: the bytes just below one may still be an older
  // version of a page here.) WAL below wal_start is gone.
  Lsn best = control_.wal_start;
  for (Lsn lsn : {control_.acceptor.timeline_start, control_.acceptor.commit_lsn}) {
    if (lsn <= limit && lsn > best) best = lsn;
  }
  auto it = boundaries_.upper_bound(limit);
  if (it != boundaries_.begin() && *std::prev(it) > best) best = *std::prev(it);
  return best;
}

void TimelineStorage::NoteBoundary(Lsn lsn) {
  constexpr size_t kMaxBoundaries = 16;
  boundaries_.insert(lsn);
  if (boundaries_.size() > kMaxBoundaries) boundaries_.erase(boundaries_.begin());
}

absl::StatusOr<Lsn> TimelineStorage::LastRecordEnd(Lsn limit) {
  limit = std::min(limit, flush_);
  const ScanResult scan = wal_.ScanRecords(ScanStart(limit), limit);
  // A decoding error here is the end of valid WAL, as in Postgres' recovery: WAL
  // after the last complete record may be a record still being written.
  NoteBoundary(scan.end);
  return scan.end;
}

absl::Status TimelineStorage::StartWalAt(Lsn lsn, const AcceptorState& state) {
  CAMBIUM_RETURN_IF_ERROR(failed_);
  if (written_end_ > flush_) {
    // Bytes a refused write left above the flush LSN (zeroing needs no space).
    CAMBIUM_RETURN_IF_ERROR(SyncFailure(wal_.Truncate(flush_, written_end_)));
    written_end_ = flush_;
  }
  ControlFileData next = control_;
  next.acceptor = state;
  next.wal_start = lsn;
  next.flush_lsn = lsn;
  // From here recovery decodes from `lsn` (a record boundary).
  CAMBIUM_RETURN_IF_ERROR(WriteControl(next));
  flush_ = lsn;
  written_end_ = lsn;
  boundaries_.clear();
  NoteBoundary(lsn);
  // What was stored below goes like archived segments; a failure is retried by
  // the next checkpoint.
  removal_pending_ = true;
  RemoveSegmentsBelow(lsn).IgnoreError();
  return absl::OkStatus();
}

absl::Status TimelineStorage::RemoveSegmentsBelow(Lsn lsn) {
  const Lsn segment_start = lsn.SegmentStart(wal_.segment_size());
  if (segment_start > control_.wal_start) {
    // The control file first: recovery must never look for WAL that is gone.
    ControlFileData next = control_;
    next.wal_start = segment_start;
    CAMBIUM_RETURN_IF_ERROR(WriteControl(next));
    removal_pending_ = true;
  }
  if (!removal_pending_) return absl::OkStatus();
  // Also retries a removal that failed after the control file moved on.
  CAMBIUM_RETURN_IF_ERROR(wal_.RemoveSegmentsBelow(control_.wal_start));
  removal_pending_ = false;
  return absl::OkStatus();
}

}  // namespace cambium::safekeeper
