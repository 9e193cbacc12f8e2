#include "compute-shim/block_cache.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "common/lsn.h"

namespace cambium::shim {

std::unique_ptr<BlockCache> BlockCache::Create(uint64_t capacity_blocks) {
  std::unique_ptr<BlockCache> cache(new BlockCache(std::max<uint64_t>(capacity_blocks, 64)));
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

BlockCache::~BlockCache() { metrics_.clear(); }

BlockCache::Chunk BlockCache::NewChunk() {
  char* p = static_cast<char*>(std::aligned_alloc(kChunkBytes, kChunkBytes));
  if (p == nullptr) throw std::bad_alloc();
  // Advice only: without transparent huge pages (or with them off) it changes nothing.
  (void)madvise(p, kChunkBytes, MADV_HUGEPAGE);
  return Chunk(p);
}

std::map<BlockCache::Key, BlockCache::Entry>::iterator BlockCache::StoreLocked(const Key& key,
                                                                               const char* data,
                                                                               bool* inserted) {
  auto [it, added] = entries_.try_emplace(key);
  *inserted = added;
  if (added) {
    if (free_slots_.empty()) {
      const uint32_t first = static_cast<uint32_t>(chunks_.size()) * kSlotsPerChunk;
      chunks_.push_back(NewChunk());
      for (uint32_t i = kSlotsPerChunk; i > 0; --i) free_slots_.push_back(first + i - 1);
    }
    it->second.slot = free_slots_.back();
    free_slots_.pop_back();
  }
  std::memcpy(SlotLocked(it->second.slot), data, kBlockSize);
  return it;
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
  std::memcpy(out, SlotLocked(it->second.slot), kBlockSize);
  return true;
}

void BlockCache::MakeCleanLocked(const Key& key, Entry& e) {
  e.mutation = 0;
  e.lru = lru_.insert(lru_.end(), key);
}

absl::Status BlockCache::Write(uint64_t file, uint32_t block, const char* data, uint64_t mutation) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{file, block};
  bool inserted = false;
  auto it = StoreLocked(key, data, &inserted);
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
  bool inserted = false;
  MakeCleanLocked(key, StoreLocked(key, data, &inserted)->second);
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
  free_slots_.push_back(it->second.slot);
  return entries_.erase(it);
}

void BlockCache::EvictLocked() {
  while (entries_.size() > capacity_ && !lru_.empty()) {
    UnindexLocked(entries_.find(lru_.front()));
    ++stats_.evictions;
  }
}

void BlockCache::Truncate(uint64_t file, uint32_t nblocks) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.lower_bound({file, nblocks});
  while (it != entries_.end() && it->first.file == file) it = UnindexLocked(it);
}

void BlockCache::Remove(uint64_t file) { Truncate(file, 0); }

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
