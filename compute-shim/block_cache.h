// BlockCache: the compute shim's bounded local copy of versioned file blocks, in the
// shim's memory (8 KiB slots, reused; no file, no system call per block).
//
// A block is absent, clean (its newest content is durable at the pageserver, so it
// can be evicted and fetched again) or dirty (written by the compute, not yet
// durable: pinned). Applied is not enough: a pageserver host crash loses what was
// applied but not synced, and the shim resends it; until then only the cache has it.
// Clean blocks are evicted least recently used first when more than `capacity_blocks`
// are present. The shim therefore always serves the newest content it has written,
// even before the pageserver has it. Memory: one slot per present block, at most
// capacity_blocks plus the dirty ones (the mutation sender bounds those, see
// mutation_sender.h), kept for reuse once allocated.
//
// (The slots were sparse shadow files on local scratch until issue 11: every block
// written or read was a pwrite or pread through ext4 on the shim's FUSE threads, 9%
// of the machine's CPU during a bulk load, and their dirty pages were written back to
// a disk that never needed them: a restarted shim starts with an empty cache.)
//
// Thread-safety: thread-safe (one mutex; a block copy is a memcpy).
#ifndef CAMBIUM_COMPUTE_SHIM_BLOCK_CACHE_H_
#define CAMBIUM_COMPUTE_SHIM_BLOCK_CACHE_H_

#include <cstdint>
#include <cstdlib>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/lsn.h"
#include "metrics/registry.h"

namespace cambium::shim {

struct BlockCacheStats {
  uint64_t present = 0;
  uint64_t dirty = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
};

class BlockCache {
 public:
  // capacity_blocks bounds the clean blocks kept; dirty blocks are never evicted.
  static std::unique_ptr<BlockCache> Create(uint64_t capacity_blocks);
  ~BlockCache();

  // Copies a present block into `out` (kBlockSize bytes); false if absent.
  absl::StatusOr<bool> Read(uint64_t file, uint32_t block, char* out);
  // Stores a block the compute wrote, dirty until mutation `mutation` is durable.
  absl::Status Write(uint64_t file, uint32_t block, const char* data, uint64_t mutation);
  // Stores a block fetched from the pageserver, unless the block became present
  // meanwhile (a newer write must not be overwritten). Clean.
  absl::Status Fill(uint64_t file, uint32_t block, const char* data);
  // Drops blocks at or after `nblocks` (truncation). Dirty ones too: the truncation
  // mutation supersedes them.
  void Truncate(uint64_t file, uint32_t nblocks);
  // Forgets every block of a file.
  void Remove(uint64_t file);
  // Every mutation numbered <= n is durable at the pageserver: their blocks become
  // clean.
  void MutationsDurable(uint64_t n);

  // Counters for the shim's shutdown log line (and its metrics, read at scrape time:
  // cambium_shim_block_cache_{hits,misses,evictions}_total, ..._blocks,
  // ..._dirty_blocks).
  BlockCacheStats stats() const;

 private:
  struct Key {
    uint64_t file;
    uint32_t block;
    bool operator<(const Key& o) const { return file != o.file ? file < o.file : block < o.block; }
  };
  struct Entry {
    uint64_t mutation = 0;         // dirty until durable >= this; 0 = clean
    std::list<Key>::iterator lru;  // valid when clean
    uint32_t slot = 0;             // where its bytes are
  };
  // Slots come in 2 MiB chunks, aligned and advised for transparent huge pages:
  // one page fault per chunk instead of one per 4 KiB. The first touch of the cache
  // was 6% of the shim's CPU while a new branch replayed its WAL and checkpointed
  // 12,000 blocks (perf, issue 11).
  static constexpr size_t kChunkBytes = size_t{2} << 20;
  static constexpr uint32_t kSlotsPerChunk = kChunkBytes / kBlockSize;
  struct FreeChunk {
    void operator()(char* p) const { std::free(p); }
  };
  using Chunk = std::unique_ptr<char[], FreeChunk>;
  static Chunk NewChunk();

  explicit BlockCache(uint64_t capacity) : capacity_(capacity) {}
  // The entry of a block, with a slot (new entries are dirty-less and clean-less:
  // the caller files them). Sets *inserted.
  std::map<Key, Entry>::iterator StoreLocked(const Key& key, const char* data, bool* inserted);
  char* SlotLocked(uint32_t slot) {
    return chunks_[slot / kSlotsPerChunk].get() + size_t{slot % kSlotsPerChunk} * kBlockSize;
  }
  void MakeCleanLocked(const Key& key, Entry& e);
  void EvictLocked();
  // Forgets a present block (LRU and dirty bookkeeping, its slot); returns the next
  // entry.
  std::map<Key, Entry>::iterator UnindexLocked(std::map<Key, Entry>::iterator it);
  void RegisterMetrics();

  const uint64_t capacity_;
  mutable std::mutex mu_;
  std::vector<Chunk> chunks_;           // GUARDED_BY(mu_)
  std::vector<uint32_t> free_slots_;    // GUARDED_BY(mu_)
  std::map<Key, Entry> entries_;        // GUARDED_BY(mu_): present blocks
  std::list<Key> lru_;                  // GUARDED_BY(mu_): clean blocks, oldest first
  std::multimap<uint64_t, Key> dirty_;  // GUARDED_BY(mu_): mutation -> block
  uint64_t durable_ = 0;                // GUARDED_BY(mu_)
  BlockCacheStats stats_;               // GUARDED_BY(mu_)
  std::vector<metrics::CallbackHandle> metrics_;
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_BLOCK_CACHE_H_
