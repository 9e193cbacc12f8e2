#include "safekeeper/safekeeper_metrics.h"

namespace cambium::safekeeper {

const SafekeeperMetrics& SafekeeperMetrics::Get() {
  using metrics::Must;
  metrics::Registry& r = metrics::DefaultRegistry();
  static const SafekeeperMetrics* const m = new SafekeeperMetrics{
      .wal_append_seconds =
          Must(r.AddHistogram("cambium_safekeeper_wal_append_seconds",
                              "Time of one durable WAL append: pwrite, then fdatasync.",
                              metrics::LatencyBuckets()))
              ->Get(),
      .wal_appended_bytes = Must(r.AddCounter("cambium_safekeeper_wal_appended_bytes_total",
                                              "WAL bytes appended durably."))
                                ->Get(),
      .wal_fsyncs = Must(r.AddCounter("cambium_safekeeper_wal_fsyncs_total",
                                      "fdatasync calls on WAL segment files."))
                        ->Get(),
      .wal_removed_bytes =
          Must(r.AddCounter("cambium_safekeeper_wal_removed_bytes_total",
                            "Bytes of WAL segment files removed after the pageserver archived "
                            "them (or when a lagging safekeeper skipped ahead)."))
              ->Get(),
      .wal_backpressure_refusals =
          Must(r.AddCounter("cambium_safekeeper_wal_backpressure_refusals_total",
                            "Appends refused because the timeline holds --max-unarchived-wal "
                            "bytes beyond what the pageserver archived (or uploaded)."))
              ->Get(),
  };
  return *m;
}

}  // namespace cambium::safekeeper
