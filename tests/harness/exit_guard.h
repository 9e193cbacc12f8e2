// ExitGuard: runs a shell command after this test process dies, however it dies.
//
// Some tests start daemons that are meant to outlive the command that started them
// (`cambium up` detaches its pageserver and safekeepers), so PR_SET_PDEATHSIG cannot
// clean them up. When ctest kills a test on timeout (SIGKILL), no destructor or
// TearDown runs. The guard is a small watcher process in its own process group that
// polls this process once a second and runs the command when it is gone.
//
// Destroying the guard (the normal path: the test cleaned up itself) stops the watcher
// without running the command.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_EXIT_GUARD_H_
#define CAMBIUM_TESTS_HARNESS_EXIT_GUARD_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/subprocess.h"

namespace cambium::testing {

class ExitGuard {
 public:
  // `shell_command` runs under /bin/sh with output discarded.
  static absl::StatusOr<ExitGuard> Start(const std::string& shell_command);

  ExitGuard(ExitGuard&&) = default;
  ExitGuard& operator=(ExitGuard&&) = default;
  ~ExitGuard() = default;  // the Subprocess stops the watcher

 private:
  explicit ExitGuard(std::unique_ptr<Subprocess> watcher) : watcher_(std::move(watcher)) {}
  std::unique_ptr<Subprocess> watcher_;
};

// Single-quotes `s` for /bin/sh.
std::string ShellQuote(const std::string& s);

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_EXIT_GUARD_H_
