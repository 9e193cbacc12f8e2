#include "tests/harness/exit_guard.h"

#include <unistd.h>

#include "absl/strings/str_format.h"

namespace cambium::testing {

absl::StatusOr<ExitGuard> ExitGuard::Start(const std::string& shell_command) {
  const std::string script = absl::StrFormat("while kill -0 %d 2>/dev/null; do sleep 1; done; %s",
                                             getpid(), shell_command);
  SubprocessOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.stdout_file = "/dev/null";
  options.stderr_file = "/dev/null";
  auto watcher = Subprocess::Start(options);
  if (!watcher.ok()) return watcher.status();
  return ExitGuard(*std::move(watcher));
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace cambium::testing
