// Checks a Prometheus text exposition with `promtool check metrics` (Debian package
// `prometheus`): the same parser and linter Prometheus' own tooling applies, so a
// body it accepts is one a real Prometheus scrapes.
//
// Thread-safety: thread-safe (each call runs its own promtool).
#ifndef CAMBIUM_TESTS_HARNESS_PROMTOOL_H_
#define CAMBIUM_TESTS_HARNESS_PROMTOOL_H_

#include <string>

#include "absl/status/status.h"

namespace cambium::testing {

inline constexpr char kPromtool[] = "/usr/bin/promtool";
inline constexpr char kPrometheus[] = "/usr/bin/prometheus";

// True if promtool is installed (tests GTEST_SKIP otherwise).
bool HavePromtool();

// OK when promtool parses `exposition` and reports no lint problem; otherwise
// FAILED_PRECONDITION with promtool's output.
absl::Status PromtoolCheckMetrics(const std::string& exposition);

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_PROMTOOL_H_
