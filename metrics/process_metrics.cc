#include "metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status.h"

#ifndef CAMBIUM_VERSION
#define CAMBIUM_VERSION "unknown"
#endif

namespace cambium::metrics {
namespace {

// Seconds since the Unix epoch at which the machine booted (/proc/stat btime).
absl::StatusOr<double> BootTime() {
  CAMBIUM_ASSIGN_OR_RETURN(std::string stat, ReadFileToString("/proc/stat"));
  for (absl::string_view line : absl::StrSplit(stat, '\n')) {
    if (line.substr(0, 6) != "btime ") continue;
    double btime = 0;
    if (absl::SimpleAtod(line.substr(6), &btime)) return btime;
  }
  return absl::InternalError("/proc/stat has no btime line");
}

double CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

using StatField = double ProcessStats::*;

// One gauge or counter of ProcessStats.
absl::Status AddStat(Registry& r, MetricType type, const char* name, const char* help,
                     StatField field) {
  auto handle = r.AddCallback(type, name, help, {}, [field](std::vector<Sample>* out) {
    auto stats = ReadProcessStats();
    if (stats.ok()) out->push_back({.label_values = {}, .value = (*stats).*field});
  });
  if (!handle.ok()) return handle.status();
  handle->Release();  // registered for the registry's lifetime
  return absl::OkStatus();
}

}  // namespace

std::string CambiumVersion() { return CAMBIUM_VERSION; }

absl::StatusOr<ProcessStats> ReadProcessStats() {
  CAMBIUM_ASSIGN_OR_RETURN(std::string stat, ReadFileToString("/proc/self/stat"));
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the fields
  // after the last ')' start with field 3 (state).
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return absl::InternalError("cannot parse /proc/self/stat");
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ', absl::SkipEmpty());
  auto field = [&f](int n) -> double {  // field n of proc(5), 1-based
    double v = 0;
    if (n - 3 < static_cast<int>(f.size())) (void)absl::SimpleAtod(f[n - 3], &v);
    return v;
  };
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  ProcessStats s;
  s.cpu_seconds = (field(14) + field(15)) / ticks;
  s.virtual_bytes = field(23);
  s.resident_bytes = field(24) * static_cast<double>(sysconf(_SC_PAGESIZE));
  static const double boot = BootTime().value_or(0);
  s.start_time_seconds = boot + field(22) / ticks;
  s.open_fds = CountOpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) s.max_fds = static_cast<double>(limit.rlim_cur);
  return s;
}

absl::Status AddProcessMetrics(Registry& r) {
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kCounter, "process_cpu_seconds_total",
                                  "Total user and system CPU time spent in seconds.",
                                  &ProcessStats::cpu_seconds));
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kGauge, "process_resident_memory_bytes",
                                  "Resident memory size in bytes.", &ProcessStats::resident_bytes));
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kGauge, "process_virtual_memory_bytes",
                                  "Virtual memory size in bytes.", &ProcessStats::virtual_bytes));
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kGauge, "process_open_fds",
                                  "Number of open file descriptors.", &ProcessStats::open_fds));
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kGauge, "process_max_fds",
                                  "Maximum number of open file descriptors.",
                                  &ProcessStats::max_fds));
  CAMBIUM_RETURN_IF_ERROR(AddStat(r, MetricType::kGauge, "process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  &ProcessStats::start_time_seconds));
  if (const char* env = std::getenv(kRestartsEnv); env != nullptr) {
    int restarts = 0;
    if (absl::SimpleAtoi(env, &restarts) && restarts >= 0) {
      auto family = r.AddGauge("cambium_supervisor_restarts",
                               "Restarts of this daemon by the stack's supervisor after an exit, "
                               "this start included (0: its first start).");
      if (!family.ok()) return family.status();
      (*family)->Get().Set(restarts);
    }
  }
  auto info =
      r.AddGauge("cambium_build_info",
                 "Always 1; the version label is the Cambium version of this binary.", {"version"});
  if (!info.ok()) return info.status();
  (*info)->WithLabels({CambiumVersion()}).Set(1);
  return absl::OkStatus();
}

}  // namespace cambium::metrics
