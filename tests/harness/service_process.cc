#include "tests/harness/service_process.h"

#include <signal.h>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/net.h"
#include "tests/harness/security.h"

namespace cambium::testing {

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(const std::string& binary,
                                                                      std::vector<std::string> args,
                                                                      int port,
                                                                      const std::string& log_file) {
  std::unique_ptr<ServiceProcess> p(new ServiceProcess(binary, std::move(args), port, log_file));
  absl::Status s = p->Launch();
  if (!s.ok()) return s;
  return p;
}

absl::Status ServiceProcess::Launch() {
  SubprocessOptions options;
  // Every Cambium daemon needs the stack's service credential.
  options.argv = {binary_, "--listen", address(), "--service-token-file", TestServiceTokenFile()};
  options.argv.insert(options.argv.end(), args_.begin(), args_.end());
  options.stdout_file = log_file_;
  options.stderr_file = log_file_;
  options.die_with_parent = true;
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  process_ = std::move(*process);
  absl::Status up =
      WaitForLoopbackPort(port_, absl::Seconds(60), [&] { return process_->running(); });
  if (absl::IsDeadlineExceeded(up)) {
    return absl::DeadlineExceededError(
        absl::StrFormat("%s did not listen on %d; log:\n%s", binary_, port_, LogTail()));
  }
  if (!up.ok()) {
    return absl::InternalError(
        absl::StrFormat("%s exited during startup; log:\n%s", binary_, LogTail()));
  }
  return absl::OkStatus();
}

ServiceProcess::~ServiceProcess() {
  if (process_ && process_->running()) (void)process_->Stop(SIGTERM, absl::Seconds(10));
}

absl::StatusOr<int> ServiceProcess::Stop() {
  if (!process_) return absl::FailedPreconditionError("not running");
  auto code = process_->Stop(SIGTERM, absl::Seconds(30));
  process_.reset();
  return code;
}

absl::Status ServiceProcess::Kill() {
  if (!process_) return absl::FailedPreconditionError("not running");
  auto code = process_->Stop(SIGKILL, absl::Seconds(10));
  process_.reset();
  return code.status();
}

absl::Status ServiceProcess::Restart() {
  if (process_ && process_->running()) return absl::FailedPreconditionError("still running");
  return Launch();
}

std::string ServiceProcess::LogTail(size_t bytes) const { return FileTail(log_file_, bytes); }

}  // namespace cambium::testing
