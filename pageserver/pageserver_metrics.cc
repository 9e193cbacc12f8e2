#include "pageserver/pageserver_metrics.h"

namespace cambium::pageserver {
namespace {

using metrics::Must;

metrics::Counter& NewCounter(const char* name, const char* help) {
  return Must(metrics::DefaultRegistry().AddCounter(name, help))->Get();
}

metrics::Histogram& NewLatency(const char* name, const char* help) {
  return Must(metrics::DefaultRegistry().AddHistogram(name, help, metrics::LatencyBuckets()))
      ->Get();
}

metrics::Family<metrics::Histogram>& BatchFamily() {
  return *Must(metrics::DefaultRegistry().AddHistogram(
      "cambium_pageserver_mutation_batch_seconds",
      "Time to apply one PutMutations batch; sync=\"true\": a synced batch (a compute's "
      "fsync), including the RocksDB sync.",
      metrics::LatencyBuckets(), {"sync"}));
}

}  // namespace

const PageServerMetrics& PageServerMetrics::Get() {
  static const PageServerMetrics* const m = new PageServerMetrics{
      .getpages_seconds = NewLatency("cambium_pageserver_getpages_seconds",
                                     "Time to serve one GetPages request (a batch of pages)."),
      .pages_served = NewCounter("cambium_pageserver_pages_served_total",
                                 "Pages returned by GetPages with their data."),
      .page_errors = NewCounter("cambium_pageserver_page_errors_total",
                                "Pages GetPages answered with an error (missing file, failed "
                                "checksum, ...)."),
      .mutation_batch_seconds = BatchFamily().WithLabels({"false"}),
      .synced_mutation_batch_seconds = BatchFamily().WithLabels({"true"}),
      .mutations = NewCounter("cambium_pageserver_mutations_total",
                              "File mutations applied from PutMutations."),
      .mutation_bytes = NewCounter("cambium_pageserver_mutation_bytes_total",
                                   "Encoded bytes of the PutMutations batches applied."),
      .barrier_seconds = NewLatency("cambium_pageserver_barrier_seconds",
                                    "Time a Barrier call waited for the batches it covers to be "
                                    "durable (shims sync through PutMutations instead)."),
      .head_wait_seconds =
          NewLatency("cambium_pageserver_head_wait_seconds",
                     "Time to establish an exact head: the safekeepers' quorum commit LSN, "
                     "known committed and archived."),
      .head_wait_failures = NewCounter("cambium_pageserver_head_wait_failures_total",
                                       "Exact heads that could not be established (no quorum, "
                                       "or not archived in time)."),
      .wal_received_bytes = NewCounter("cambium_pageserver_wal_received_bytes_total",
                                       "WAL bytes archived from the safekeepers."),
      .gc_runs = NewCounter("cambium_pageserver_gc_runs_total", "GC runs over a tenant."),
      .gc_removed_versions = NewCounter("cambium_pageserver_gc_removed_versions_total",
                                        "Page and file versions removed by GC."),
      .gc_removed_bytes = NewCounter("cambium_pageserver_gc_removed_bytes_total",
                                     "Key and value bytes of the versions GC's scan removed "
                                     "(space RocksDB frees at compaction)."),
      .gc_seconds = NewCounter("cambium_pageserver_gc_seconds_total",
                               "Time spent in GC passes over timelines."),
  };
  return *m;
}

}  // namespace cambium::pageserver
