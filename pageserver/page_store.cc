#include "pageserver/page_store.h"

#include <cstdarg>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"
#include "pageserver/keys.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/table_properties_collectors.h"

namespace cambium::pageserver {
namespace {

constexpr const char* kFamilyNames[] = {"default", "blocks", "files", "wal", "commits"};

rocksdb::CompressionType ParseCompression(const std::string& name) {
  if (name == "none") return rocksdb::kNoCompression;
  if (name == "zstd") return rocksdb::kZSTD;
  return rocksdb::kLZ4Compression;
}

rocksdb::ColumnFamilyOptions FamilyOptions(Family family, const PageStoreOptions& options,
                                           const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  // Debian's librocksdb is built portable, without SSE 4.2: its CRC32C is the
  // table-driven one (rocksdb::crc32c::Slow_CRC32, a few percent of the pageserver's
  // CPU while it served WAL and pages at an endpoint start). New SST files carry
  // XXH3 block checksums instead (vectorised; each file records its own type, so
  // older files keep being verified with CRC32C).
  table.checksum = rocksdb::kXXH3;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.level_compaction_dynamic_level_bytes = true;
  // One codec for every level. (ZSTD on the bottommost level was measured: with
  // dynamic level sizes nearly every compaction writes the bottommost level, and
  // ZSTD there made compaction the largest CPU user during a bulk load.) With LZ4
  // the pages are compressed one by one as they are written (PageCodec) and the
  // archived WAL chunk by chunk (wal_archive.cc), and the SST files of those two
  // families are not compressed again: compactions then copy them (LZ4 on the WAL
  // family's blocks was a third of the pageserver's CPU during a bulk load).
  cf.compression = ParseCompression(options.compression);
  if ((family == Family::kBlocks || family == Family::kWal) &&
      cf.compression == rocksdb::kLZ4Compression) {
    cf.compression = rocksdb::kNoCompression;
  }
  if (family == Family::kBlocks || family == Family::kFiles) {
    // Lookups are seeks within one timeline|path prefix: bloom on that prefix.
    cf.prefix_extractor = keys::NewPathPrefixExtractor();
    cf.memtable_prefix_bloom_size_ratio = 0.05;
    table.whole_key_filtering = false;
  }
  if (family == Family::kBlocks) {
    // SST files that GC filled with deletions are compacted soon, so the space of
    // deleted versions returns without waiting for the level to fill up.
    cf.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(/*sliding_window_size=*/1024,
                                                      /*deletion_trigger=*/512,
                                                      /*deletion_ratio=*/0.5));
    table.block_size = 32 * 1024;  // a few 8 KiB versions per block
    cf.write_buffer_size = options.write_buffer_bytes;
    cf.max_write_buffer_number = 4;
    cf.target_file_size_base = 64ull << 20;
    if (options.blob_files) {
      cf.enable_blob_files = true;
      cf.min_blob_size = 4096;
      cf.blob_compression_type = cf.compression;
      cf.enable_blob_garbage_collection = true;
    }
  } else {
    cf.write_buffer_size = 16ull << 20;
  }
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

bool HasPrefix(const rocksdb::Slice& key, std::string_view prefix) {
  return key.size() >= prefix.size() && std::memcmp(key.data(), prefix.data(), prefix.size()) == 0;
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& status, std::string_view context) {
  if (status.ok()) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  if (status.IsCorruption()) code = absl::StatusCode::kDataLoss;
  if (status.IsNotFound()) code = absl::StatusCode::kNotFound;
  if (status.IsNoSpace() || status.subcode() == rocksdb::Status::kSpaceLimit) {
    code = absl::StatusCode::kResourceExhausted;
  }
  if (status.IsIOError() && !status.IsNoSpace()) code = absl::StatusCode::kUnavailable;
  if (status.IsInvalidArgument()) code = absl::StatusCode::kInvalidArgument;
  return absl::Status(code, absl::StrFormat("%s: %s", context, status.ToString()));
}

namespace {

// RocksDB's own info log goes to the pageserver's log instead of a LOG file in the
// data directory. On a full disk RocksDB's file logger fails one append, and its
// next line trips an assertion in Debian's RocksDB 7.8 (WritableFileWriter::
// AssertFalseAndGetStatusForPrevError): the pageserver aborted on ENOSPC. Warnings
// and errors are logged as such; RocksDB's chatty info lines at debug level.
class RocksInfoLogger : public rocksdb::Logger {
 public:
  RocksInfoLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(buf, sizeof(buf), format, copy);
    va_end(copy);
    if (n < 0) return;
    const std::string_view message(buf, std::min<size_t>(static_cast<size_t>(n), sizeof(buf) - 1));
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      LogError("rocksdb", {{"message", message}});
    } else if (level >= rocksdb::InfoLogLevel::WARN_LEVEL) {
      LogWarning("rocksdb", {{"message", message}});
    } else {
      LogDebug("rocksdb", {{"message", message}});
    }
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<PageStore>> PageStore::Open(const std::string& dir,
                                                           const PageStoreOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrFormat("create %s: %s", dir, ec.message()));
  auto cache = rocksdb::NewLRUCache(options.cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 4;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 1ull << 30;
  // The MANIFEST goes up whole with every upload to an object store
  // (remote_history.h): rolled over at 64 MiB instead of RocksDB's 1 GiB.
  db_options.max_manifest_file_size = 64ull << 20;
  db_options.paranoid_checks = true;
  db_options.info_log = std::make_shared<RocksInfoLogger>();
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int i = 0; i < 5; ++i) {
    families.emplace_back(kFamilyNames[i], FamilyOptions(static_cast<Family>(i), options, cache));
  }
  std::unique_ptr<PageStore> store(new PageStore());
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir, families, &store->handles_, &db);
  if (!s.ok()) return FromRocks(s, absl::StrFormat("open page store %s", dir));
  store->db_.reset(db);
  store->dir_ = dir;
  store->page_codec_ = ParseCompression(options.compression) == rocksdb::kLZ4Compression
                           ? PageCodec::kLz4
                           : PageCodec::kNone;
  return store;
}

PageStore::~PageStore() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close();
}

absl::Status PageStore::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = db_->Write(wo, batch);
  if (s.ok() || !(s.IsNoSpace() || s.IsIOError())) return FromRocks(s, "page store write");
  // A full disk stops RocksDB (a background error). Once space is back, Resume()
  // clears it; try at most once a second, then retry this write once.
  if (TryResume()) s = db_->Write(wo, batch);
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the pageserver's disk is full (%s): %s; writes resume by themselves "
                        "once space is freed",
                        dir_, s.ToString()));
  }
  return FromRocks(s, "page store write");
}

bool PageStore::TryResume() {
  {
    std::lock_guard<std::mutex> lock(resume_mu_);
    const absl::Time now = absl::Now();
    if (now - last_resume_ < absl::Seconds(1)) return false;
    last_resume_ = now;
  }
  rocksdb::Status s = db_->Resume();
  if (s.ok()) {
    LogInfo("page_store_resumed", {{"dir", dir_}});
  } else {
    LogDebug("page_store_resume_failed", {{"dir", dir_}, {"status", s.ToString()}});
  }
  return s.ok();
}

absl::Status PageStore::Sync() {
  std::unique_lock<std::mutex> lock(sync_mu_);
  const uint64_t ticket = ++sync_requested_;
  while (sync_done_ < ticket) {
    if (syncing_) {
      sync_cv_.wait(lock);
      continue;
    }
    // Every ticket taken so far belongs to a write that already returned, so one
    // fsync now covers all of them.
    syncing_ = true;
    const uint64_t covering = sync_requested_;
    lock.unlock();
    rocksdb::WriteBatch empty;
    absl::Status s = Write(&empty, /*sync=*/true);
    lock.lock();
    syncing_ = false;
    if (s.ok()) sync_done_ = std::max(sync_done_, covering);
    sync_cv_.notify_all();
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<BlockVersion>> PageStore::FindBlock(
    const TimelineId& timeline, std::string_view path, uint32_t block, Lsn max_lsn,
    const VisibleFn& visible, const rocksdb::Snapshot* snapshot) {
  // The key of (block, max_lsn); without its inverted LSN, the prefix of every version.
  const std::string start = keys::BlockKey(timeline, path, block, max_lsn);
  const std::string_view prefix(start.data(), start.size() - 8);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kBlocks)));
  for (it->Seek(start); it->Valid() && HasPrefix(it->key(), prefix); it->Next()) {
    BlockVersion v;
    v.lsn = Lsn(~keys::LoadBigEndian64(it->key().data() + prefix.size()));
    const std::string_view key(it->key().data(), it->key().size());
    absl::Status s =
        DecodeBlockValue(key, std::string_view(it->value().data(), it->value().size()), &v);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrFormat("%s (block %u of %s at %s on timeline %s)",
                                                 s.message(), block, path, v.lsn.ToString(),
                                                 timeline.ToString()));
    }
    if (visible(v.lsn, v.generation)) return std::optional<BlockVersion>(std::move(v));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read block");
  return std::optional<BlockVersion>();
}

absl::StatusOr<std::optional<FileVersion>> PageStore::FindFile(const TimelineId& timeline,
                                                               std::string_view path, Lsn max_lsn,
                                                               const VisibleFn& visible,
                                                               const rocksdb::Snapshot* snapshot) {
  // The key of (path, max_lsn); without its inverted LSN, the prefix of every version.
  const std::string start = keys::FileKey(timeline, path, max_lsn);
  const std::string_view prefix(start.data(), start.size() - 8);
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(Family::kFiles)));
  for (it->Seek(start);
       it->Valid() && HasPrefix(it->key(), prefix) && it->key().size() == prefix.size() + 8;
       it->Next()) {
    FileVersion v;
    v.lsn = Lsn(~keys::LoadBigEndian64(it->key().data() + prefix.size()));
    const std::string_view key(it->key().data(), it->key().size());
    absl::Status s =
        DecodeFileValue(key, std::string_view(it->value().data(), it->value().size()), &v);
    if (!s.ok()) {
      return absl::DataLossError(absl::StrFormat("%s (file %s at %s on timeline %s)", s.message(),
                                                 path, v.lsn.ToString(), timeline.ToString()));
    }
    if (visible(v.lsn, v.generation)) return std::optional<FileVersion>(std::move(v));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read file state");
  return std::optional<FileVersion>();
}

absl::Status PageStore::ForEachPath(const TimelineId& timeline,
                                    const std::function<absl::Status(std::string_view)>& fn,
                                    const rocksdb::Snapshot* snapshot) {
  const std::string lower = keys::TimelinePrefix(timeline);
  const std::string upper = keys::PrefixEnd(lower);
  std::unique_ptr<rocksdb::Iterator> it =
      NewBoundedIterator(Family::kFiles, lower, upper, snapshot);
  it->Seek(lower);
  while (it->Valid()) {
    keys::ParsedFileKey parsed;
    const std::string_view key(it->key().data(), it->key().size());
    if (!keys::ParseFileKey(key, &parsed)) {
      return absl::DataLossError(
          absl::StrFormat("malformed file key on timeline %s", timeline.ToString()));
    }
    absl::Status s = fn(parsed.path);
    if (!s.ok()) return s;
    // Skip the path's other versions: seek past timeline|path|0x00|*.
    it->Seek(keys::PrefixEnd(keys::PathPrefix(timeline, parsed.path)));
  }
  return FromRocks(it->status(), "list files");
}

std::unique_ptr<rocksdb::Iterator> PageStore::NewBoundedIterator(
    Family family, const std::string& lower, const std::string& upper,
    const rocksdb::Snapshot* snapshot) {
  // The bounds must outlive the iterator: keep them in a holder owned by it.
  struct BoundedIterator : public rocksdb::Iterator {
    std::string lower_s, upper_s;
    rocksdb::Slice lower, upper;
    std::unique_ptr<rocksdb::Iterator> inner;
    bool Valid() const override { return inner->Valid(); }
    void SeekToFirst() override { inner->SeekToFirst(); }
    void SeekToLast() override { inner->SeekToLast(); }
    void Seek(const rocksdb::Slice& t) override { inner->Seek(t); }
    void SeekForPrev(const rocksdb::Slice& t) override { inner->SeekForPrev(t); }
    void Next() override { inner->Next(); }
    void Prev() override { inner->Prev(); }
    rocksdb::Slice key() const override { return inner->key(); }
    rocksdb::Slice value() const override { return inner->value(); }
    rocksdb::Status status() const override { return inner->status(); }
  };
  auto holder = std::make_unique<BoundedIterator>();
  holder->lower_s = lower;
  holder->upper_s = upper;
  holder->lower = holder->lower_s;
  holder->upper = holder->upper_s;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  ro.total_order_seek = true;
  ro.iterate_lower_bound = &holder->lower;
  ro.iterate_upper_bound = &holder->upper;
  holder->inner.reset(db_->NewIterator(ro, cf(family)));
  return holder;
}

absl::StatusOr<bool> PageStore::HasAnyKey(Family family, const std::string& prefix) {
  auto it = NewBoundedIterator(family, prefix, keys::PrefixEnd(prefix));
  it->Seek(prefix);
  CAMBIUM_RETURN_IF_ERROR(FromRocks(it->status(), "probe page store"));
  return it->Valid();
}

absl::StatusOr<std::optional<std::string>> PageStore::GetMeta(std::string_view key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(Family::kMeta),
                               rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "read metadata");
  return std::optional<std::string>(std::move(value));
}

absl::Status PageStore::DeleteTimelineData(const TimelineId& timeline,
                                           const std::vector<std::string>& meta_keys) {
  const std::string lower = keys::TimelinePrefix(timeline);
  const std::string upper = keys::PrefixEnd(lower);
  rocksdb::WriteBatch batch;
  for (Family f : {Family::kBlocks, Family::kFiles, Family::kWal, Family::kCommits}) {
    batch.DeleteRange(cf(f), lower, upper);
  }
  for (const std::string& key : meta_keys) batch.Delete(cf(Family::kMeta), key);
  return Write(&batch, /*sync=*/true);
}

absl::Status PageStore::CompactRange(Family family, const std::string& lower,
                                     const std::string& upper) {
  rocksdb::CompactRangeOptions options;
  options.exclusive_manual_compaction = false;  // automatic compactions go on meanwhile
  const rocksdb::Slice begin(lower), end(upper);
  return FromRocks(db_->CompactRange(options, cf(family), &begin, &end), "compact range");
}

uint64_t PageStore::ApproximateSize(Family family, const std::string& lower,
                                    const std::string& upper) {
  rocksdb::Range range(lower, upper);
  uint64_t size = 0;
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  (void)db_->GetApproximateSizes(options, cf(family), &range, 1, &size);
  return size;
}

}  // namespace cambium::pageserver
