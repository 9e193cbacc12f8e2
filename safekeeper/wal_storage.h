// WalStorage: one timeline's WAL in 16 MiB segment files, named as Postgres names
// them (WalSegmentFileName(1, segno)), each holding the WAL bytes at their LSN
// offsets.
//
// Segments are created whole and zero-filled (written to a temporary name, synced,
// renamed without replacing), as Postgres does, so that an append overwrites
// allocated blocks and fdatasync has no metadata to flush, and so that bytes
// never written read as zeros: the end of WAL. Write() puts bytes in the page
// cache; Sync() makes every segment written since the last Sync durable with
// fdatasync. ScanRecords() decodes Postgres WAL records forward (the end of valid
// WAL, the last record boundary); Truncate() zeroes everything from an LSN on.
//
// A full disk: creating a segment can fail with RESOURCE_EXHAUSTED; the partial
// file is removed and nothing else changes, so it can simply be retried. Writes
// into an existing segment overwrite allocated blocks and need no new space. A
// failed fdatasync or directory sync is sticky: every later Write/Sync fails
// with it (SyncFailure), because the page cache no longer says what is on disk.
//
// Thread-safety: Write, Sync, Truncate, RemoveSegmentsBelow and CreateSegment are
// called under the owner's lock (one writer); Read and ScanRecords may run
// concurrently with them from other threads (they see the bytes before or after
// a concurrent write).
#ifndef CAMBIUM_SAFEKEEPER_WAL_STORAGE_H_
#define CAMBIUM_SAFEKEEPER_WAL_STORAGE_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/lsn.h"
#include "safekeeper/file_system.h"

namespace cambium::safekeeper {

// Where a forward decode of the stored WAL stopped.
struct ScanResult {
  Lsn end;              // end of the last complete record (the start if none)
  absl::Status reason;  // why it stopped: OK (reached the limit), OUT_OF_RANGE (end of
                        // WAL), DATA_LOSS (invalid record), NOT_FOUND (no segment)
};

class WalStorage {
 public:
  WalStorage(FileSystem* fs, std::string dir, uint64_t segment_size = kDefaultWalSegmentSize);

  const std::string& dir() const { return dir_; }
  uint64_t segment_size() const { return segment_size_; }
  std::string SegmentPath(uint64_t segno) const;
  std::string SegmentPathFor(Lsn lsn) const { return SegmentPath(lsn.SegmentNo(segment_size_)); }

  // Writes `bytes` at `lsn` (creating segments as needed); durable after Sync().
  absl::Status Write(Lsn lsn, std::string_view bytes);
  // fdatasync of every segment written since the last Sync.
  absl::Status Sync();
  // Reads [lsn, lsn + size). Bytes past the end of a short segment read as zeros;
  // NOT_FOUND names a missing segment.
  absl::Status Read(Lsn lsn, uint64_t size, std::string* out);
  // Decodes records from `from` (a record boundary, or a page boundary) over the
  // bytes below `limit`, counting records that end at or below it.
  ScanResult ScanRecords(Lsn from, Lsn limit);
  // Durably zeroes [lsn, written_end) and removes the segment files after lsn's.
  absl::Status Truncate(Lsn lsn, Lsn written_end);
  // Durably zeroes what follows `lsn` in its segment if anything there is not
  // zero (a torn write found at startup), and removes later segment files.
  // Returns how many non-zero bytes were cleared.
  absl::StatusOr<uint64_t> CutTail(Lsn lsn);
  // Durably removes the segment files that end at or below `lsn`.
  absl::Status RemoveSegmentsBelow(Lsn lsn);
  // Creates segment `segno` zero-filled if it does not exist yet. On failure
  // (RESOURCE_EXHAUSTED: the disk is full) no file is left behind.
  absl::Status CreateSegment(uint64_t segno);
  // Removes segment files left half-created by a crash (startup).
  absl::Status RemoveTemporaryFiles();
  // Closes every open segment file (the timeline is being deleted); readers keep
  // the files they hold until they are done.
  void CloseAll();
  // OK, or the sticky failure of an fdatasync / directory sync.
  absl::Status sync_failed();
  // The segment numbers present, ascending.
  absl::StatusOr<std::vector<uint64_t>> ListSegments();

 private:
  // The open segment file. With `for_write`, creates the segment if needed and
  // marks it dirty (under the same lock as the lookup): it stays open until synced.
  absl::StatusOr<std::shared_ptr<File>> SegmentFile(uint64_t segno, bool for_write);
  void ForgetSegment(uint64_t segno);
  absl::Status FillNewSegment(const std::string& tmp);

  FileSystem* const fs_;
  const std::string dir_;
  const uint64_t segment_size_;
  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<File>> open_ ABSL_GUARDED_BY(mu_);
  // Written since the last Sync. Invariant: every dirty segment is in open_.
  std::set<uint64_t> dirty_ ABSL_GUARDED_BY(mu_);
  absl::Status sync_failed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_WAL_STORAGE_H_
