// Subprocess: start, signal, wait for and stop child processes.
//
// Used by the test harness (Postgres, pgbench, pageservers, safekeepers, shims) and
// by the `cambium` CLI (daemons, endpoints). A child can run as another user (Postgres
// refuses to run as root, so a root parent starts it as `postgres`), in its own
// process group (so stopping it also stops what it started), and optionally dies with
// its parent (PR_SET_PDEATHSIG) so a crashed test leaves nothing behind.
//
// Everything the child needs is prepared before fork(); between fork() and exec()
// the child calls only async-signal-safe functions, which keeps this safe in
// multithreaded processes (gRPC servers and clients start threads).
//
// Thread-safety: a Subprocess is used by one thread at a time; RunCommand is
// thread-safe.
#ifndef CAMBIUM_COMMON_SUBPROCESS_H_
#define CAMBIUM_COMMON_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cambium {

struct SubprocessOptions {
  // argv[0] is the program: a path, or a name looked up in PATH.
  std::vector<std::string> argv;
  // Added to (or replacing entries of) the parent's environment.
  std::map<std::string, std::string> env;
  // Working directory; empty = the parent's.
  std::string cwd;
  // Run as this user (with its primary group and no supplementary groups). Only
  // takes effect when the parent runs as root. Default: the parent's user.
  std::string user;
  // Where stdout/stderr go: empty = inherited; a path = appended to that file.
  std::string stdout_file;
  std::string stderr_file;
  // Send SIGKILL to the child if the thread that started it exits. Default: false.
  bool die_with_parent = false;
};

class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(const SubprocessOptions& options);
  // Takes ownership of a child this process already started (it must be a process
  // group leader for Signal/Stop to reach its children).
  static std::unique_ptr<Subprocess> Adopt(pid_t pid);

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;
  // Stops the process group (SIGTERM, then SIGKILL after 10 s) if still running.
  ~Subprocess();

  pid_t pid() const { return pid_; }
  bool running();

  // Waits for exit. Returns the exit code, or 128 + signal number if killed by a
  // signal; DEADLINE_EXCEEDED if still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::InfiniteDuration());

  // Sends `sig` to the whole process group.
  void Signal(int sig);

  // Sends `sig` to the group, waits up to `grace`, then SIGKILLs the group and
  // reaps the child. Returns the exit code as Wait does.
  absl::StatusOr<int> Stop(int sig = 15 /* SIGTERM */, absl::Duration grace = absl::Seconds(10));

  // Gives up ownership: the destructor no longer stops the process.
  pid_t Release();

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = 0;
  std::string out;
  std::string err;
};

// Runs a command to completion, capturing stdout and stderr (stdout_file and
// stderr_file are ignored). DEADLINE_EXCEEDED (after killing the group) if it runs
// longer than `timeout`. A non-zero exit code is not an error here; see
// CheckCommand.
absl::StatusOr<CommandResult> RunCommand(const SubprocessOptions& options,
                                         absl::Duration timeout = absl::Minutes(5));

// Like RunCommand, but a non-zero exit is an error (INTERNAL) whose message holds the
// command and the tail of its stderr. Returns stdout.
absl::StatusOr<std::string> CheckCommand(const SubprocessOptions& options,
                                         absl::Duration timeout = absl::Minutes(5));

}  // namespace cambium

#endif  // CAMBIUM_COMMON_SUBPROCESS_H_
