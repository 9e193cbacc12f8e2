// Loopback networking helpers shared by the CLI and the test harness.
//
// Thread-safety: stateless functions.
#ifndef CAMBIUM_COMMON_NET_H_
#define CAMBIUM_COMMON_NET_H_

#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cambium {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0 and closed).
absl::StatusOr<int> FreeLoopbackPort();
// True if something accepts TCP connections on 127.0.0.1:port.
bool LoopbackPortOpen(int port);
// Waits until something accepts connections on 127.0.0.1:port: DEADLINE_EXCEEDED
// after `timeout`. If `alive` is given, it is polled too and a false answer (the
// process that should listen has exited) ends the wait early with INTERNAL.
absl::Status WaitForLoopbackPort(int port, absl::Duration timeout,
                                 const std::function<bool()>& alive = nullptr);

}  // namespace cambium

#endif  // CAMBIUM_COMMON_NET_H_
