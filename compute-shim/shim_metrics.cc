#include "compute-shim/shim_metrics.h"

namespace cambium::shim {
namespace {

using metrics::Must;

// Label values of FuseOp, in its order.
constexpr const char* kFuseOpNames[] = {
    "getattr", "opendir",  "readdir",  "releasedir", "mkdir",  "rmdir",     "unlink", "rename",
    "chmod",   "chown",    "truncate", "utimens",    "create", "open",      "read",   "write",
    "fsync",   "fsyncdir", "release",  "flush",      "statfs", "fallocate", "symlink"};
static_assert(std::size(kFuseOpNames) == static_cast<size_t>(FuseOp::kCount));

metrics::Counter& NewCounter(const char* name, const char* help) {
  return Must(metrics::DefaultRegistry().AddCounter(name, help))->Get();
}

metrics::Histogram& NewLatency(const char* name, const char* help) {
  return Must(metrics::DefaultRegistry().AddHistogram(name, help, metrics::LatencyBuckets()))
      ->Get();
}

ShimMetrics* Make() {
  auto* m = new ShimMetrics{
      .wal_quorum_flush_seconds =
          NewLatency("cambium_shim_wal_quorum_flush_seconds",
                     "Time an fsync of pg_wal waited for a quorum of safekeepers to hold the WAL "
                     "(a commit's durability wait)."),
      .wal_appended_bytes = NewCounter("cambium_shim_wal_appended_bytes_total",
                                       "WAL bytes Postgres wrote that were sent to the "
                                       "safekeepers."),
      .getpages_seconds = NewLatency("cambium_shim_getpages_seconds",
                                     "Time of one GetPages round trip to the pageserver "
                                     "(retries included)."),
      .getpages_pages =
          NewCounter("cambium_shim_getpages_pages_total", "Pages requested from the pageserver."),
      .mutation_batches_sent = NewCounter("cambium_shim_mutation_batches_sent_total",
                                          "PutMutations batches sent (resent ones again)."),
      .mutations_sent = NewCounter("cambium_shim_mutations_sent_total",
                                   "File mutations sent to the pageserver (resent ones again)."),
      .mutation_sent_bytes = NewCounter("cambium_shim_mutation_sent_bytes_total",
                                        "Encoded bytes of the mutations sent to the pageserver."),
      .mutation_barrier_seconds =
          NewLatency("cambium_shim_mutation_barrier_seconds",
                     "Time an fsync of a data file waited for every earlier mutation to be "
                     "durable at the pageserver."),
      .partial_blocks_completed =
          NewCounter("cambium_shim_partial_blocks_completed_total",
                     "Relation file blocks the kernel wrote back only in part (the rest "
                     "unchanged), versioned over their current content."),
      .fuse_operations = {},
  };
  metrics::Family<metrics::Counter>* ops = Must(metrics::DefaultRegistry().AddCounter(
      "cambium_shim_fuse_operations_total", "FUSE calls served, by operation.", {"op"}));
  for (size_t i = 0; i < std::size(kFuseOpNames); ++i) {
    m->fuse_operations[i] = &ops->WithLabels({kFuseOpNames[i]});
  }
  return m;
}

}  // namespace

const ShimMetrics& ShimMetrics::Get() {
  static const ShimMetrics* const m = Make();
  return *m;
}

}  // namespace cambium::shim
