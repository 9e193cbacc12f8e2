// ServiceProcess: a Cambium daemon (pageserver, safekeeper, shim) started by a test on
// a free loopback port, stopped with SIGTERM (or killed) when the test ends.
//
// Thread-safety: not thread-safe.
#ifndef CAMBIUM_TESTS_HARNESS_SERVICE_PROCESS_H_
#define CAMBIUM_TESTS_HARNESS_SERVICE_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/subprocess.h"

namespace cambium::testing {

class ServiceProcess {
 public:
  // Starts `binary` with `args` plus `--listen 127.0.0.1:<port>`; waits until the port
  // accepts connections. Logs go to `log_file`.
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(const std::string& binary,
                                                               std::vector<std::string> args,
                                                               int port,
                                                               const std::string& log_file);
  ~ServiceProcess();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }

  // SIGTERM and wait; returns the exit code.
  absl::StatusOr<int> Stop();
  // SIGKILL: a crash.
  absl::Status Kill();
  // Starts the same command again (after Stop or Kill).
  absl::Status Restart();
  // The tail of the log, for failure messages.
  std::string LogTail(size_t bytes = 3000) const;

 private:
  ServiceProcess(std::string binary, std::vector<std::string> args, int port, std::string log)
      : binary_(std::move(binary)),
        args_(std::move(args)),
        port_(port),
        log_file_(std::move(log)) {}
  absl::Status Launch();

  const std::string binary_;
  const std::vector<std::string> args_;
  const int port_;
  const std::string log_file_;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_SERVICE_PROCESS_H_
