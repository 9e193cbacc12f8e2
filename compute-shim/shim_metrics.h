// ShimMetrics: the compute shim's counters and histograms on its data paths
// (docs/metrics.md lists them with the scrape-time figures BlockCache and
// MutationSender register: cache hits, misses, evictions and sizes, the mutation
// queue). Registered once in metrics::DefaultRegistry, on first use.
//
// Thread-safety: thread-safe; every member is updated with relaxed atomics.
#ifndef CAMBIUM_COMPUTE_SHIM_SHIM_METRICS_H_
#define CAMBIUM_COMPUTE_SHIM_SHIM_METRICS_H_

#include <cstddef>

#include "metrics/registry.h"

namespace cambium::shim {

// The FUSE operations counted by `op` label (ShimFs::Operations).
enum class FuseOp {
  kGetAttr,
  kOpenDir,
  kReadDir,
  kReleaseDir,
  kMkdir,
  kRmdir,
  kUnlink,
  kRename,
  kChmod,
  kChown,
  kTruncate,
  kUtimens,
  kCreate,
  kOpen,
  kRead,
  kWrite,
  kFsync,
  kFsyncDir,
  kRelease,
  kFlush,
  kStatFs,
  kFallocate,
  kSymlink,
  kCount,  // not an operation: the number of them
};

struct ShimMetrics {
  // The process's instance (registered on the first call).
  static const ShimMetrics& Get();

  // A commit's wait: fsync of pg_wal until a quorum of safekeepers holds the WAL.
  metrics::Histogram& wal_quorum_flush_seconds;
  metrics::Counter& wal_appended_bytes;  // WAL handed to the safekeeper proposer
  // Page reads from the pageserver, one round trip (with retries) per batch.
  metrics::Histogram& getpages_seconds;
  metrics::Counter& getpages_pages;
  // Mutations streamed to the pageserver (resent batches count again).
  metrics::Counter& mutation_batches_sent;
  metrics::Counter& mutations_sent;
  metrics::Counter& mutation_sent_bytes;
  // fsync of a data file: every earlier mutation durable at the pageserver.
  metrics::Histogram& mutation_barrier_seconds;
  // Relation file blocks of which only a part was written, versioned over their
  // current content (ShimFs::WriteCached).
  metrics::Counter& partial_blocks_completed;
  // FUSE calls by operation; indexed by FuseOp.
  metrics::Counter* fuse_operations[static_cast<size_t>(FuseOp::kCount)];

  void CountFuse(FuseOp op) const { fuse_operations[static_cast<size_t>(op)]->Increment(); }
};

}  // namespace cambium::shim

#endif  // CAMBIUM_COMPUTE_SHIM_SHIM_METRICS_H_
