#include "common/subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

extern char** environ;

namespace cambium {
namespace {

// Everything the child needs, computed before fork().
struct PreparedExec {
  std::string program;
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  bool change_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string cwd;
  std::string stdout_file;
  std::string stderr_file;
  int capture_out = -1;  // write ends of capture pipes, if capturing
  int capture_err = -1;
  bool die_with_parent = false;
  pid_t parent = 0;
};

absl::StatusOr<std::string> ResolveProgram(const std::string& name, const std::string& path_var) {
  if (name.find('/') != std::string::npos) return name;
  for (const std::string& dir :
       std::vector<std::string>(absl::StrSplit(path_var, ':', absl::SkipEmpty()))) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return absl::NotFoundError(absl::StrFormat("program \"%s\" not found in PATH", name));
}

absl::StatusOr<PreparedExec> Prepare(const SubprocessOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("empty command line");
  PreparedExec p;
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  auto program = ResolveProgram(options.argv[0], env.count("PATH") ? env["PATH"] : "/usr/bin:/bin");
  if (!program.ok()) return program.status();
  p.program = *program;
  p.argv_storage = options.argv;
  for (std::string& a : p.argv_storage) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (const auto& [k, v] : env) p.env_storage.push_back(k + "=" + v);
  for (std::string& e : p.env_storage) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  if (!options.user.empty() && geteuid() == 0) {
    struct passwd pw, *result = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(options.user.c_str(), &pw, buf.data(), buf.size(), &result) != 0 ||
        result == nullptr) {
      return absl::NotFoundError(absl::StrFormat("user \"%s\" does not exist", options.user));
    }
    p.change_user = true;
    p.uid = pw.pw_uid;
    p.gid = pw.pw_gid;
  }
  p.cwd = options.cwd;
  p.stdout_file = options.stdout_file;
  p.stderr_file = options.stderr_file;
  p.die_with_parent = options.die_with_parent;
  p.parent = getpid();
  return p;
}

// In the child: async-signal-safe calls only. Reports (stage, errno) on `err_fd`.
[[noreturn]] void ExecChild(const PreparedExec& p, int err_fd) {
  auto fail = [err_fd](int stage) {
    int report[2] = {stage, errno};
    (void)!write(err_fd, report, sizeof(report));
    _exit(127);
  };
  setpgid(0, 0);
  if (p.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != p.parent) _exit(127);
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &dfl, nullptr);

  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd < 0 || dup2(null_fd, 0) < 0) fail(1);
  auto redirect = [&](int capture, const std::string& file, int target, int stage) {
    if (capture >= 0) {
      if (dup2(capture, target) < 0) fail(stage);
    } else if (!file.empty()) {
      int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0 || dup2(fd, target) < 0) fail(stage);
    }
  };
  redirect(p.capture_out, p.stdout_file, 1, 2);
  redirect(p.capture_err, p.stderr_file, 2, 3);
  // Nothing of the parent's (sockets, FUSE fds, files) leaks into the program.
  syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
  if (!p.cwd.empty() && chdir(p.cwd.c_str()) != 0) fail(4);
  if (p.change_user) {
    if (setgroups(0, nullptr) != 0 || setgid(p.gid) != 0 || setuid(p.uid) != 0) fail(5);
  }
  execve(p.program.c_str(), p.argv.data(), p.envp.data());
  fail(6);
  _exit(127);
}

const char* StageName(int stage) {
  switch (stage) {
    case 1:
      return "open /dev/null";
    case 2:
      return "redirect stdout";
    case 3:
      return "redirect stderr";
    case 4:
      return "chdir";
    case 5:
      return "switch user";
    default:
      return "exec";
  }
}

absl::StatusOr<pid_t> Spawn(const PreparedExec& p) {
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe2");
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(err_pipe[0]);
    close(err_pipe[1]);
    return ErrnoToStatus(e, "fork");
  }
  if (pid == 0) {
    close(err_pipe[0]);
    ExecChild(p, err_pipe[1]);
  }
  close(err_pipe[1]);
  int report[2];
  ssize_t n;
  do {
    n = read(err_pipe[0], report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == sizeof(report)) {
    int status;
    waitpid(pid, &status, 0);
    errno = report[1];
    return ErrnoToStatus(report[1],
                         absl::StrFormat("starting %s: %s", p.program, StageName(report[0])));
  }
  return pid;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

std::string CommandLine(const SubprocessOptions& options) {
  return absl::StrJoin(options.argv, " ");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(const SubprocessOptions& options) {
  auto prepared = Prepare(options);
  if (!prepared.ok()) return prepared.status();
  auto pid = Spawn(*prepared);
  if (!pid.ok()) return pid.status();
  return std::unique_ptr<Subprocess>(new Subprocess(*pid));
}

std::unique_ptr<Subprocess> Subprocess::Adopt(pid_t pid) {
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_) (void)Stop();
}

bool Subprocess::running() {
  if (exit_code_ || pid_ <= 0) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  return r == 0;
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(1);
  while (running()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("process %d still running after %s", pid_,
                                                         absl::FormatDuration(timeout)));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(20));
  }
  if (!exit_code_) return absl::InternalError(absl::StrFormat("process %d was not reaped", pid_));
  return *exit_code_;
}

void Subprocess::Signal(int sig) {
  if (running()) kill(-pid_, sig);
}

absl::StatusOr<int> Subprocess::Stop(int sig, absl::Duration grace) {
  if (!running()) {
    if (exit_code_) return *exit_code_;
    return absl::FailedPreconditionError("process is not running");
  }
  kill(-pid_, sig);
  auto code = Wait(grace);
  if (code.ok()) return code;
  kill(-pid_, SIGKILL);
  return Wait();
}

pid_t Subprocess::Release() {
  pid_t pid = pid_;
  pid_ = -1;
  return pid;
}

absl::StatusOr<CommandResult> RunCommand(const SubprocessOptions& options, absl::Duration timeout) {
  auto prepared = Prepare(options);
  if (!prepared.ok()) return prepared.status();
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoToStatus(errno, "pipe2");
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return ErrnoToStatus(e, "pipe2");
  }
  prepared->capture_out = out_pipe[1];
  prepared->capture_err = err_pipe[1];
  auto pid = Spawn(*prepared);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (!pid.ok()) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    return pid.status();
  }
  std::unique_ptr<Subprocess> process = Subprocess::Adopt(*pid);
  CommandResult result;
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  const absl::Time deadline = absl::Now() + timeout;
  bool timed_out = false;
  char buf[65536];
  while (open_fds > 0) {
    int wait_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (wait_ms <= 0) {
      timed_out = true;
      break;
    }
    int r = poll(fds, 2, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, n);
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  if (timed_out) {
    (void)process->Stop(SIGKILL, absl::Seconds(5));
    return absl::DeadlineExceededError(
        absl::StrFormat("`%s` did not finish within %s; stderr: %s", CommandLine(options),
                        absl::FormatDuration(timeout), result.err.substr(0, 2000)));
  }
  auto code = process->Wait(timeout);
  if (!code.ok()) {
    (void)process->Stop(SIGKILL, absl::Seconds(5));
    return code.status();
  }
  result.exit_code = *code;
  return result;
}

absl::StatusOr<std::string> CheckCommand(const SubprocessOptions& options, absl::Duration timeout) {
  auto result = RunCommand(options, timeout);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    std::string tail =
        result->err.size() > 2000 ? result->err.substr(result->err.size() - 2000) : result->err;
    return absl::InternalError(absl::StrFormat("`%s` exited with code %d: %s", CommandLine(options),
                                               result->exit_code, tail));
  }
  return std::move(result->out);
}

}  // namespace cambium
