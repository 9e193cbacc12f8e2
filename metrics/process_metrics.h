// The standard process metrics every Prometheus client exposes, read from /proc at
// scrape time (nothing is sampled in between), and the build information:
//
//   process_cpu_seconds_total        user + system CPU time (counter)
//   process_resident_memory_bytes    resident set size
//   process_virtual_memory_bytes     virtual memory size
//   process_open_fds                 open file descriptors
//   process_max_fds                  the open-files limit (RLIMIT_NOFILE)
//   process_start_time_seconds       start time, seconds since the Unix epoch
//   cambium_build_info{version}      1, labelled with the Cambium version
//   cambium_supervisor_restarts      how often the stack's supervisor restarted this
//                                    daemon after an exit, this start included (from
//                                    $CAMBIUM_SUPERVISOR_RESTARTS, which the supervisor
//                                    sets; absent for a process it did not start)
//
// DefaultRegistry() registers them itself; other registries (tests) may call
// AddProcessMetrics.
//
// Thread-safety: thread-safe (the callbacks only read /proc).
#ifndef CAMBIUM_METRICS_PROCESS_METRICS_H_
#define CAMBIUM_METRICS_PROCESS_METRICS_H_

#include <string>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace cambium::metrics {

// The environment variable the supervisor (tools/supervisor.h) passes.
inline constexpr char kRestartsEnv[] = "CAMBIUM_SUPERVISOR_RESTARTS";

// Registers the metrics above on `registry`; their callbacks stay registered for the
// registry's lifetime.
absl::Status AddProcessMetrics(Registry& registry);

// The Cambium version compiled in (CMake's PROJECT_VERSION).
std::string CambiumVersion();

// What /proc/self says about this process now (exposed for tests).
struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;
};
absl::StatusOr<ProcessStats> ReadProcessStats();

}  // namespace cambium::metrics

#endif  // CAMBIUM_METRICS_PROCESS_METRICS_H_
