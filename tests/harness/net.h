// Loopback helpers for tests: free ports that one test process never hands out twice.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_NET_H_
#define CAMBIUM_TESTS_HARNESS_NET_H_

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cambium::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and closed).
// Ports handed out by one process are never repeated, so parallel helpers of one
// test do not collide with each other.
absl::StatusOr<int> FreePort();

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_NET_H_
