// SafekeeperMetrics: the safekeeper's counters and histograms on its write path
// (docs/metrics.md lists them with the scrape-time gauges Safekeeper registers:
// timelines, and per timeline the flush, commit and archived LSNs). Registered once
// in metrics::DefaultRegistry, on first use.
//
// Thread-safety: thread-safe; every member is updated with relaxed atomics.
#ifndef CAMBIUM_SAFEKEEPER_SAFEKEEPER_METRICS_H_
#define CAMBIUM_SAFEKEEPER_SAFEKEEPER_METRICS_H_

#include "metrics/registry.h"

namespace cambium::safekeeper {

struct SafekeeperMetrics {
  // The process's instance (registered on the first call).
  static const SafekeeperMetrics& Get();

  // One durable append: pwrite of the WAL bytes, then fdatasync.
  metrics::Histogram& wal_append_seconds;
  metrics::Counter& wal_appended_bytes;
  // fdatasync calls on WAL segments (one per segment an append touched).
  metrics::Counter& wal_fsyncs;
  // Segment files removed once the pageserver archived their WAL (or skipped).
  metrics::Counter& wal_removed_bytes;
  // Appends refused because the timeline held max_unarchived_wal beyond what the
  // pageserver archived (backpressure; the proposer retries).
  metrics::Counter& wal_backpressure_refusals;
};

}  // namespace cambium::safekeeper

#endif  // CAMBIUM_SAFEKEEPER_SAFEKEEPER_METRICS_H_
