#include "compute-shim/block_cache.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/lsn.h"
#include "common/status.h"

namespace cambium::shim {

absl::StatusOr<std::unique_ptr<BlockCache>> BlockCache::Create(const std::string& dir,
                                                               uint64_t capacity_blocks) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrFormat("create cache directory %s: %s", dir, ec.message()));
  std::unique_ptr<BlockCache> cache(new BlockCache(dir, std::max<uint64_t>(capacity_blocks, 64)));
  cache->RegisterMetrics();
  return cache;
}

void BlockCache::RegisterMetrics() {
  struct Stat {
    metrics::MetricType type;
    const char* name;
    const char* help;
    uint64_t BlockCacheStats::*field;
  };
  static constexpr Stat kStats[] = {
      {metrics::MetricType::kCounter, "cambium_shim_block_cache_hits_total",
       "Block reads served from the local cache.", &BlockCacheStats::hits},
      {metrics::MetricType::kCounter, "cambium_shim_block_cache_misses_total",
       "Block reads the local cache did not have (fetched from the pageserver).",
       &BlockCacheStats::misses},
      {metrics::MetricType::kCounter, "cambium_shim_block_cache_evictions_total",
       "Clean blocks evicted from the local cache.", &BlockCacheStats::evictions},
      {metrics::MetricType::kGauge, "cambium_shim_block_cache_blocks",
       "Blocks (8 KiB) in the local cache.", &BlockCacheStats::present},
      {metrics::MetricType::kGauge, "cambium_shim_block_cache_dirty_blocks",
       "Blocks in the local cache not yet durable at the pageserver (pinned).",
       &BlockCacheStats::dirty},
  };
  for (const Stat& s : kStats) {
    metrics_.push_back(metrics::Must(metrics::DefaultRegistry().AddCallback(
        s.type, s.name, s.help, {}, [this, field = s.field](std::vector<metrics::Sample>* out) {
          out->push_back({.value = static_cast<double>(stats().*field)});
        })));
  }
}

BlockCache::~BlockCache() {
  metrics_.clear();
  for (auto& [id, f] : files_) {
    if (f.fd >= 0) close(f.fd);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::StatusOr<int> BlockCache::FdLocked(uint64_t file) {
  File& f = files_[file];
  if (f.fd >= 0) return f.fd;
  const std::string path = absl::StrFormat("%s/%u", dir_, file);
  f.fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (f.fd < 0) return ErrnoToStatus(errno, "open cache file " + path);
  return f.fd;
}

absl::Status BlockCache::StoreLocked(uint64_t file, uint32_t block, const char* data) {
  CAMBIUM_ASSIGN_OR_RETURN(int fd, FdLocked(file));
  return PwriteAll(fd, std::string_view(data, kBlockSize), uint64_t{block} * kBlockSize,
                   "cache file");
}

absl::StatusOr<bool> BlockCache::Read(uint64_t file, uint32_t block, char* out) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find({file, block});
  if (it == entries_.end()) {
    ++stats_.misses;
    return false;
  }
  ++stats_.hits;
  if (it->second.mutation == 0) lru_.splice(lru_.end(), lru_, it->second.lru);
  CAMBIUM_ASSIGN_OR_RETURN(int fd, FdLocked(file));
  CAMBIUM_ASSIGN_OR_RETURN(
      const size_t done,
      PreadFull(fd, out, kBlockSize, uint64_t{block} * kBlockSize, "cache file"));
  std::memset(out + done, 0, kBlockSize - done);  // a hole at the end: zeros
  return true;
}

void BlockCache::MakeCleanLocked(const Key& key, Entry& e) {
  e.mutation = 0;
  e.lru = lru_.insert(lru_.end(), key);
}

absl::Status BlockCache::Write(uint64_t file, uint32_t block, const char* data, uint64_t mutation) {
  std::lock_guard<std::mutex> lock(mu_);
  CAMBIUM_RETURN_IF_ERROR(StoreLocked(file, block, data));
  const Key key{file, block};
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (!inserted && e.mutation == 0) lru_.erase(e.lru);
  if (mutation <= durable_) {
    MakeCleanLocked(key, e);
  } else {
    if (inserted || e.mutation == 0) ++stats_.dirty;
    e.mutation = mutation;
    dirty_.emplace(mutation, key);
  }
  EvictLocked();
  return absl::OkStatus();
}

absl::Status BlockCache::Fill(uint64_t file, uint32_t block, const char* data) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{file, block};
  if (entries_.contains(key)) return absl::OkStatus();
  CAMBIUM_RETURN_IF_ERROR(StoreLocked(file, block, data));
  MakeCleanLocked(key, entries_.try_emplace(key).first->second);
  EvictLocked();
  return absl::OkStatus();
}

std::map<BlockCache::Key, BlockCache::Entry>::iterator BlockCache::UnindexLocked(
    std::map<Key, Entry>::iterator it) {
  if (it->second.mutation == 0) {
    lru_.erase(it->second.lru);
  } else {
    --stats_.dirty;
  }
  return entries_.erase(it);
}

void BlockCache::DropLocked(const Key& key, std::map<Key, Entry>::iterator it) {
  UnindexLocked(it);
  auto f = files_.find(key.file);
  if (f != files_.end() && f->second.fd >= 0) {
    fallocate(f->second.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
              static_cast<off_t>(key.block) * kBlockSize, kBlockSize);
  }
}

void BlockCache::EvictLocked() {
  while (entries_.size() > capacity_ && !lru_.empty()) {
    const Key key = lru_.front();
    DropLocked(key, entries_.find(key));
    ++stats_.evictions;
  }
}

void BlockCache::Truncate(uint64_t file, uint32_t nblocks) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.lower_bound({file, nblocks});
  while (it != entries_.end() && it->first.file == file) {
    const Key key = it->first;
    auto next = std::next(it);
    DropLocked(key, it);
    it = next;
  }
  auto f = files_.find(file);
  if (f != files_.end() && f->second.fd >= 0) {
    (void)ftruncate(f->second.fd, static_cast<off_t>(nblocks) * kBlockSize);
  }
}

void BlockCache::Remove(uint64_t file) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.lower_bound({file, 0});
  while (it != entries_.end() && it->first.file == file) it = UnindexLocked(it);
  auto f = files_.find(file);
  if (f != files_.end()) {
    if (f->second.fd >= 0) close(f->second.fd);
    files_.erase(f);
  }
  unlink(absl::StrFormat("%s/%u", dir_, file).c_str());
}

void BlockCache::MutationsDurable(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (n <= durable_) return;
  durable_ = n;
  for (auto it = dirty_.begin(); it != dirty_.end() && it->first <= n;) {
    auto e = entries_.find(it->second);
    // Only the block's newest write makes it clean.
    if (e != entries_.end() && e->second.mutation == it->first) {
      --stats_.dirty;
      MakeCleanLocked(it->second, e->second);
    }
    it = dirty_.erase(it);
  }
  EvictLocked();
}

BlockCacheStats BlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  BlockCacheStats s = stats_;
  s.present = entries_.size();
  return s;
}

}  // namespace cambium::shim
