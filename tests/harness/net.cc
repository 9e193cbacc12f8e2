#include "tests/harness/net.h"

#include <mutex>
#include <set>

#include "common/net.h"

namespace cambium::testing {

absl::StatusOr<int> FreePort() {
  static std::mutex mu;
  static std::set<int> handed_out;
  for (int attempt = 0; attempt < 100; ++attempt) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    std::lock_guard<std::mutex> lock(mu);
    if (handed_out.insert(*port).second) return *port;
  }
  return absl::ResourceExhaustedError("no free loopback port found");
}

}  // namespace cambium::testing
