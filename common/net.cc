#include "common/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_format.h"
#include "common/status.h"

namespace cambium {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket");
  sockaddr_in addr = Loopback(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    close(fd);
    return ErrnoToStatus(e, "bind 127.0.0.1:0");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

bool LoopbackPortOpen(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = Loopback(port);
  const bool open = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return open;
}

absl::Status WaitForLoopbackPort(int port, absl::Duration timeout,
                                 const std::function<bool()>& alive) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    if (LoopbackPortOpen(port)) return absl::OkStatus();
    if (alive && !alive()) {
      return absl::InternalError(
          absl::StrFormat("the process that should listen on 127.0.0.1:%d exited", port));
    }
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrFormat("nothing listens on 127.0.0.1:%d after %s",
                                                     port, absl::FormatDuration(timeout)));
}

}  // namespace cambium
