// PageServerMetrics: the pageserver's counters and histograms that its hot paths
// update (docs/metrics.md lists them with the scrape-time gauges PageServer and
// WalReceiver register). Registered once in metrics::DefaultRegistry, on first use.
//
// Latencies are histograms in seconds over metrics::LatencyBuckets(); counts and
// byte counts are process-wide counters (no per-timeline labels: those are kept for
// what is per timeline by nature, such as the WAL archive lag).
//
// Thread-safety: thread-safe; every member is updated with relaxed atomics.
#ifndef CAMBIUM_PAGESERVER_PAGESERVER_METRICS_H_
#define CAMBIUM_PAGESERVER_PAGESERVER_METRICS_H_

#include "metrics/registry.h"

namespace cambium::pageserver {

struct PageServerMetrics {
  // The process's instance (registered on the first call).
  static const PageServerMetrics& Get();

  // GetPages: one request of a stream (up to max_pages_per_request pages).
  metrics::Histogram& getpages_seconds;
  metrics::Counter& pages_served;  // pages returned with their data
  metrics::Counter& page_errors;   // pages answered with an error (missing file, checksum)
  // PutMutations: batches applied, without and with sync (a synced batch is how a
  // shim's fsync of a data file reaches the pageserver; it includes the RocksDB sync).
  metrics::Histogram& mutation_batch_seconds;
  metrics::Histogram& synced_mutation_batch_seconds;
  metrics::Counter& mutations;
  metrics::Counter& mutation_bytes;  // encoded size of the applied batches
  // The Barrier RPC (tools, imports; the shim syncs through PutMutations instead).
  metrics::Histogram& barrier_seconds;
  // Exact head ("head means acknowledged"): the wait for the safekeepers' quorum
  // commit LSN to be known and archived (branch, restore, reset, lsn at head).
  metrics::Histogram& head_wait_seconds;
  metrics::Counter& head_wait_failures;
  // WAL appended to the archive from the safekeepers (followed or read for a head).
  metrics::Counter& wal_received_bytes;
  // GC: runs over a tenant, and what its passes over timelines removed.
  metrics::Counter& gc_runs;
  metrics::Counter& gc_removed_versions;
  metrics::Counter& gc_removed_bytes;
  metrics::Counter& gc_seconds;
};

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_PAGESERVER_METRICS_H_
