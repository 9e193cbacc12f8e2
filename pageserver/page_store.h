// PageStore: the pageserver's RocksDB database and its column families (meta,
// blocks, files, wal, commits), tuned for 8 KiB values, with checksummed lookups of
// "the newest visible version at or below an LSN" on one timeline and group-commit
// durability.
//
// It knows keys and values, not ancestry: Timeline walks the ancestry and decides
// visibility. See docs/pageserver.md.
//
// Thread-safety: thread-safe (RocksDB is; Sync coordinates concurrent callers).
#ifndef CAMBIUM_PAGESERVER_PAGE_STORE_H_
#define CAMBIUM_PAGESERVER_PAGE_STORE_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "pageserver/versions.h"
#include "rocksdb/db.h"

namespace cambium::pageserver {

struct PageStoreOptions {
  // Block cache for all column families. Default: 512 MiB.
  uint64_t cache_bytes = 512ull << 20;
  // Compression: "lz4" (pages compressed one by one as they are written, see
  // PageCodec, and archived WAL chunk by chunk, see wal_archive.cc; SST files of the
  // other families with LZ4), "zstd" (pages and WAL as they are, SST files with
  // ZSTD) or "none". Default: "lz4".
  std::string compression = "lz4";
  // Keep page versions in blob files (RocksDB integrated BlobDB): compaction moves
  // keys, not 8 KiB values. Default: false.
  bool blob_files = false;
  // Size of one memtable of the blocks family. Default: 64 MiB.
  uint64_t write_buffer_bytes = 64ull << 20;
};

enum class Family { kMeta, kBlocks, kFiles, kWal, kCommits };

// Decides whether a version (tag, generation) is visible to a reader.
using VisibleFn = std::function<bool(Lsn, uint64_t)>;

class PageStore {
 public:
  static absl::StatusOr<std::unique_ptr<PageStore>> Open(const std::string& dir,
                                                         const PageStoreOptions& options);
  ~PageStore();
  PageStore(const PageStore&) = delete;
  PageStore& operator=(const PageStore&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // How new page versions are stored (PageStoreOptions::compression).
  PageCodec page_codec() const { return page_codec_; }
  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    return handles_[static_cast<int>(family)];
  }

  // Applies a batch. With sync, it is durable before this returns; without, it is in
  // RocksDB's WAL (written to the OS) and becomes durable at the next Sync(). On a
  // full disk: RESOURCE_EXHAUSTED, nothing applied; writes resume by themselves once
  // space is freed (RocksDB's background error is cleared with Resume()).
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Makes every Write that returned before this call durable. Concurrent callers
  // share one fsync (group commit). It is an empty synced write, not SyncWAL():
  // the write path refuses while RocksDB is stopped by an error, whereas SyncWAL()
  // reaches a WAL file whose append failed, which Debian's RocksDB 7.8 turns into
  // an assertion failure (an abort) instead of an error.
  absl::Status Sync();

  // The newest version of a block on `timeline` tagged <= max_lsn that `visible`
  // accepts; std::nullopt if none. DATA_LOSS if a stored version fails its checksum.
  absl::StatusOr<std::optional<BlockVersion>> FindBlock(
      const TimelineId& timeline, std::string_view path, uint32_t block, Lsn max_lsn,
      const VisibleFn& visible, const rocksdb::Snapshot* snapshot = nullptr);
  // The same for a path's file state.
  absl::StatusOr<std::optional<FileVersion>> FindFile(const TimelineId& timeline,
                                                      std::string_view path, Lsn max_lsn,
                                                      const VisibleFn& visible,
                                                      const rocksdb::Snapshot* snapshot = nullptr);

  // Calls fn(path) for every path that has at least one file version on `timeline`,
  // in path order. Stops early (returning its status) if fn returns non-OK.
  absl::Status ForEachPath(const TimelineId& timeline,
                           const std::function<absl::Status(std::string_view)>& fn,
                           const rocksdb::Snapshot* snapshot = nullptr);

  // An iterator over a family confined to [lower, upper).
  std::unique_ptr<rocksdb::Iterator> NewBoundedIterator(
      Family family, const std::string& lower, const std::string& upper,
      const rocksdb::Snapshot* snapshot = nullptr);

  // True if any key of `family` starts with `prefix`.
  absl::StatusOr<bool> HasAnyKey(Family family, const std::string& prefix);

  // Meta family point operations.
  absl::StatusOr<std::optional<std::string>> GetMeta(std::string_view key);

  // Deletes every key of `timeline` in the blocks, files, wal and commits families
  // (range deletes) and the given meta keys, in one synced write.
  absl::Status DeleteTimelineData(const TimelineId& timeline,
                                  const std::vector<std::string>& meta_keys);

  // Compacts the keys in [lower, upper) of a family down to the last level, so that
  // deleted versions there give their space back (GC of dropped files).
  absl::Status CompactRange(Family family, const std::string& lower, const std::string& upper);

  // Bytes stored for keys in [lower, upper) of a family (approximate: SST sizes plus
  // memtables).
  uint64_t ApproximateSize(Family family, const std::string& lower, const std::string& upper);

 private:
  PageStore() = default;
  // Clears RocksDB's background error (a full disk); rate-limited. True if resumed.
  bool TryResume();

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::string dir_;
  PageCodec page_codec_ = PageCodec::kNone;

  std::mutex resume_mu_;
  absl::Time last_resume_ = absl::InfinitePast();  // GUARDED_BY(resume_mu_)

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  uint64_t sync_requested_ = 0;  // GUARDED_BY(sync_mu_)
  uint64_t sync_done_ = 0;       // GUARDED_BY(sync_mu_)
  bool syncing_ = false;         // GUARDED_BY(sync_mu_)
};

// rocksdb::Status -> absl::Status with context.
absl::Status FromRocks(const rocksdb::Status& status, std::string_view context);

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_PAGE_STORE_H_
