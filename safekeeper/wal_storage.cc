#include "safekeeper/wal_storage.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "absl/strings/str_format.h"
#include "common/pg/wal_decoder.h"
#include "common/status.h"
#include "safekeeper/safekeeper_metrics.h"

namespace cambium::safekeeper {
namespace {

constexpr uint64_t kChunk = 1 << 20;
// Open segment files kept per timeline (the newest; older ones are reopened).
constexpr size_t kMaxOpenSegments = 4;

}  // namespace

WalStorage::WalStorage(FileSystem* fs, std::string dir, uint64_t segment_size)
    : fs_(fs), dir_(std::move(dir)), segment_size_(segment_size) {}

std::string WalStorage::SegmentPath(uint64_t segno) const {
  return dir_ + "/" + WalSegmentFileName(1, segno, segment_size_);
}

absl::Status WalStorage::FillNewSegment(const std::string& tmp) {
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_->Open(tmp, OpenMode::kCreateNew));
  const std::string zeros(kChunk, '\0');
  for (uint64_t off = 0; off < segment_size_; off += kChunk) {
    CAMBIUM_RETURN_IF_ERROR(
        file->Write(off, std::string_view(zeros).substr(0, std::min(kChunk, segment_size_ - off))));
  }
  // A failed fsync here loses nothing: the file is thrown away.
  return file->Sync();
}

absl::Status WalStorage::CreateSegment(uint64_t segno) {
  CAMBIUM_RETURN_IF_ERROR(sync_failed());
  const std::string path = SegmentPath(segno);
  if (fs_->Exists(path)) return absl::OkStatus();
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrFormat("%s.%d.%u.tmp", path, getpid(), counter++);
  absl::Status made = FillNewSegment(tmp);
  if (made.ok()) made = fs_->Rename(tmp, path, /*no_replace=*/true);
  if (!made.ok()) {
    // On a full disk the partial file holds the last free space: give it back.
    if (fs_->Exists(tmp)) fs_->Remove(tmp).IgnoreError();
    // ALREADY_EXISTS: someone else created it meanwhile.
    return absl::IsAlreadyExists(made) ? absl::OkStatus() : made;
  }
  absl::Status synced = fs_->SyncDir(dir_);
  if (!synced.ok()) {
    // The new name may not be durable, and WAL written into the segment later
    // would be fdatasynced without it: stop using this storage.
    absl::MutexLock lock(&mu_);
    sync_failed_ = SyncFailure(synced);
    return sync_failed_;
  }
  return absl::OkStatus();
}

absl::Status WalStorage::sync_failed() {
  absl::MutexLock lock(&mu_);
  return sync_failed_;
}

void WalStorage::CloseAll() {
  absl::MutexLock lock(&mu_);
  open_.clear();
  dirty_.clear();
}

absl::Status WalStorage::RemoveTemporaryFiles() {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir_));
  for (const std::string& name : names) {
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
        ParseWalSegmentFileName(name.substr(0, name.find('.')), segment_size_).ok()) {
      CAMBIUM_RETURN_IF_ERROR(fs_->Remove(dir_ + "/" + name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<File>> WalStorage::SegmentFile(uint64_t segno, bool for_write) {
  {
    absl::MutexLock lock(&mu_);
    auto it = open_.find(segno);
    if (it != open_.end()) {
      if (for_write) dirty_.insert(segno);
      return it->second;
    }
  }
  const std::string path = SegmentPath(segno);
  if (for_write) {
    CAMBIUM_RETURN_IF_ERROR(CreateSegment(segno));
  } else if (!fs_->Exists(path)) {
    return absl::NotFoundError(absl::StrFormat("WAL segment %s does not exist", path));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<File> opened, fs_->Open(path, OpenMode::kReadWrite));
  absl::MutexLock lock(&mu_);
  std::shared_ptr<File> file = open_.emplace(segno, std::move(opened)).first->second;
  if (for_write) dirty_.insert(segno);
  // Close the oldest clean segments beyond the limit, never the one just opened
  // (a reader of an old segment has the lowest number) nor a dirty one (it must stay
  // open until synced). Callers hold their own reference in any case.
  for (auto it = open_.begin(); open_.size() > kMaxOpenSegments && it != open_.end();) {
    if (it->first == segno || dirty_.count(it->first)) {
      ++it;
    } else {
      it = open_.erase(it);
    }
  }
  return file;
}

void WalStorage::ForgetSegment(uint64_t segno) {
  absl::MutexLock lock(&mu_);
  open_.erase(segno);
  dirty_.erase(segno);
}

absl::Status WalStorage::Write(Lsn lsn, std::string_view bytes) {
  while (!bytes.empty()) {
    const uint64_t segno = lsn.SegmentNo(segment_size_);
    const uint64_t offset = lsn.SegmentOffset(segment_size_);
    const uint64_t n = std::min<uint64_t>(bytes.size(), segment_size_ - offset);
    CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<File> file, SegmentFile(segno, /*for_write=*/true));
    CAMBIUM_RETURN_IF_ERROR(file->Write(offset, bytes.substr(0, n)));
    bytes.remove_prefix(n);
    lsn += n;
  }
  return absl::OkStatus();
}

absl::Status WalStorage::Sync() {
  // Writes and syncs come from one writer (the owner's lock), so nothing becomes
  // dirty meanwhile; the references keep the files open even if evicted.
  std::vector<std::pair<uint64_t, std::shared_ptr<File>>> files;
  {
    absl::MutexLock lock(&mu_);
    if (!sync_failed_.ok()) return sync_failed_;
    for (uint64_t segno : dirty_) files.emplace_back(segno, open_.at(segno));
    dirty_.clear();
  }
  for (size_t k = 0; k < files.size(); ++k) {
    SafekeeperMetrics::Get().wal_fsyncs.Increment();
    absl::Status synced = files[k].second->DataSync();
    if (synced.ok()) continue;
    // This segment and the ones after it are not durable, and after a failed
    // fdatasync the page cache no longer says what is on disk: every later Sync
    // fails too (the owner stops the timeline; a restart recovers from the disk).
    absl::MutexLock lock(&mu_);
    for (; k < files.size(); ++k) {
      open_.emplace(files[k].first, files[k].second);
      dirty_.insert(files[k].first);
    }
    sync_failed_ = SyncFailure(synced);
    return sync_failed_;
  }
  return absl::OkStatus();
}

absl::Status WalStorage::Read(Lsn lsn, uint64_t size, std::string* out) {
  const uint64_t first_offset = lsn.SegmentOffset(segment_size_);
  if (size > 0 && size <= segment_size_ - first_offset) {
    // Within one segment (nearly every read): straight into *out.
    CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<File> file,
                             SegmentFile(lsn.SegmentNo(segment_size_), /*for_write=*/false));
    CAMBIUM_RETURN_IF_ERROR(file->Read(first_offset, size, out));
    out->resize(size, '\0');  // past the end of a short segment
    return absl::OkStatus();
  }
  out->clear();
  out->reserve(size);
  std::string piece;
  while (size > 0) {
    const uint64_t segno = lsn.SegmentNo(segment_size_);
    const uint64_t offset = lsn.SegmentOffset(segment_size_);
    const uint64_t n = std::min<uint64_t>(size, segment_size_ - offset);
    CAMBIUM_ASSIGN_OR_RETURN(std::shared_ptr<File> file, SegmentFile(segno, /*for_write=*/false));
    CAMBIUM_RETURN_IF_ERROR(file->Read(offset, n, &piece));
    out->append(piece);
    out->append(n - piece.size(), '\0');
    size -= n;
    lsn += n;
  }
  return absl::OkStatus();
}

ScanResult WalStorage::ScanRecords(Lsn from, Lsn limit) {
  pg::WalDecoder decoder(from, pg::WalDecoderOptions{.segment_size = segment_size_});
  ScanResult result{from, absl::OkStatus()};
  Lsn fed = from;
  std::string chunk;
  for (;;) {
    absl::StatusOr<std::optional<pg::WalRecord>> next = decoder.Next();
    if (!next.ok()) {
      result.reason = next.status();
      return result;
    }
    if (next->has_value()) {
      if ((*next)->end > limit) return result;
      result.end = (*next)->end;
      continue;
    }
    if (fed >= limit) return result;
    // Feed up to the end of the current segment at most, so a missing next
    // segment is only noticed when the decoder needs it.
    const uint64_t segment_left = fed.SegmentStart(segment_size_) + segment_size_ - fed;
    const uint64_t n = std::min({kChunk, limit - fed, segment_left});
    absl::Status read = Read(fed, n, &chunk);
    if (!read.ok()) {
      result.reason = read;
      return result;
    }
    decoder.Feed(chunk);
    fed += n;
  }
}

absl::Status WalStorage::Truncate(Lsn lsn, Lsn written_end) {
  const uint64_t segno = lsn.SegmentNo(segment_size_);
  if (written_end > lsn) {
    const Lsn segment_end = SegmentStartLsn(segno + 1, segment_size_);
    const uint64_t n = std::min(written_end, segment_end) - lsn;
    if (fs_->Exists(SegmentPath(segno))) {
      CAMBIUM_RETURN_IF_ERROR(Write(lsn, std::string(n, '\0')));
      CAMBIUM_RETURN_IF_ERROR(Sync());
    }
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments());
  bool removed = false;
  for (uint64_t s : segments) {
    if (s <= segno) continue;
    ForgetSegment(s);
    CAMBIUM_RETURN_IF_ERROR(fs_->Remove(SegmentPath(s)));
    SafekeeperMetrics::Get().wal_removed_bytes.Increment(segment_size_);
    removed = true;
  }
  return removed ? SyncFailure(fs_->SyncDir(dir_)) : absl::OkStatus();
}

absl::StatusOr<uint64_t> WalStorage::CutTail(Lsn lsn) {
  const uint64_t segno = lsn.SegmentNo(segment_size_);
  uint64_t cleared = 0;
  Lsn last_nonzero = lsn;
  if (fs_->Exists(SegmentPath(segno))) {
    const Lsn segment_end = SegmentStartLsn(segno + 1, segment_size_);
    std::string chunk;
    for (Lsn at = lsn; at < segment_end; at += kChunk) {
      const uint64_t n = std::min<uint64_t>(kChunk, segment_end - at);
      CAMBIUM_RETURN_IF_ERROR(Read(at, n, &chunk));
      for (uint64_t i = 0; i < n; ++i) {
        if (chunk[i] != 0) {
          ++cleared;
          last_nonzero = at + i + 1;
        }
      }
    }
  }
  CAMBIUM_RETURN_IF_ERROR(Truncate(lsn, last_nonzero));
  return cleared;
}

absl::Status WalStorage::RemoveSegmentsBelow(Lsn lsn) {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<uint64_t> segments, ListSegments());
  bool removed = false;
  for (uint64_t s : segments) {
    if (SegmentStartLsn(s + 1, segment_size_) > lsn) break;
    ForgetSegment(s);
    CAMBIUM_RETURN_IF_ERROR(fs_->Remove(SegmentPath(s)));
    removed = true;
  }
  return removed ? SyncFailure(fs_->SyncDir(dir_)) : absl::OkStatus();
}

absl::StatusOr<std::vector<uint64_t>> WalStorage::ListSegments() {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_->ListDir(dir_));
  std::vector<uint64_t> segments;
  for (const std::string& name : names) {
    absl::StatusOr<WalSegmentName> parsed = ParseWalSegmentFileName(name, segment_size_);
    if (parsed.ok()) segments.push_back(parsed->segno);
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

}  // namespace cambium::safekeeper
