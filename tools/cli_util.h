// Helpers of the `cambium` CLI: detached daemons, liveness, stale mounts, and the
// parsing of times and LSNs users type.
//
// Thread-safety: stateless functions.
#ifndef CAMBIUM_TOOLS_CLI_UTIL_H_
#define CAMBIUM_TOOLS_CLI_UTIL_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/lsn.h"
#include "nlohmann/json.hpp"
#include "tools/cli_state.h"

namespace cambium::cli {

// Starts a program that outlives the CLI (its own process group, output appended to
// `log`). Returns its pid.
absl::StatusOr<int> StartDetached(const std::vector<std::string>& argv, const std::string& log,
                                  const std::string& user = "",
                                  const std::map<std::string, std::string>& env = {});

// Gives the directories `paths` (just made by the CLI) to the postgres user with
// lchown(2): no chown process forked in every endpoint start, no link followed.
absl::Status GiveToPostgres(const std::vector<std::string>& paths);

// True if the process exists and is not a zombie (false for pid <= 0).
bool ProcessAlive(int pid);
// Sends `sig` to the process group (or the process), waits up to `grace` for it to
// go, then SIGKILLs. OK, and no signal sent, if it is already gone or pid <= 0.
absl::Status StopProcess(int pid, int sig, absl::Duration grace);
// True if process `pid` is alive and its command line holds `args` as consecutive
// arguments: a recorded pid is still the process it was (pids are reused).
bool ProcessHasArgs(int pid, const std::vector<std::string>& args);
// Stops (SIGTERM, then SIGKILL after 10 s) every process whose command line holds
// `args` as consecutive arguments, e.g. {"--data-dir", "/x/pageserver"}: for
// daemons whose pid nobody recorded. The calling process is never a match.
absl::Status KillProcessesWithArgs(const std::vector<std::string>& args);
// The path of this very binary (the supervisor is `cambium supervise`, and runs
// `cambium endpoint recover`).
absl::StatusOr<std::string> SelfExe();
// The path of Cambium program `name` ("cambium-pageserver", "cambium-safekeeper",
// "cambium-shim"), found relative to this binary, never by a path compiled in: next
// to it (installed: /usr/bin), in ../lib/cambium (a libexec layout), or where the
// build tree puts it (tools/cambium -> ../pageserver/cambium-pageserver). NOT_FOUND
// names every place it looked.
absl::StatusOr<std::string> FindProgram(const std::string& name);
// FindProgram, or the name itself (a command line that fails to start, saying so).
std::string ProgramPath(const std::string& name);

// Lazily unmounts `path`: clears the mount a dead shim leaves behind (every access
// fails with "transport endpoint is not connected"). A no-op if nothing is mounted.
void CleanStaleMount(const std::string& path);

// http://127.0.0.1:PORT/metrics of a daemon's or shim's HTTP server; null if port 0.
nlohmann::json MetricsUrl(int http_port);

// Progress of long commands (`up` on a first run, imports, restores, endpoint
// starts), on stderr so that stdout stays one JSON document: on a terminal one line
// per step ("cambium: starting postgres on main..."); with --json, NDJSON events
// {"event": "progress", "stage", "message", "elapsed_ms"}; otherwise nothing.
// Process-wide; set once by main().
enum class ProgressMode { kNone, kTerminal, kJson };
void SetProgressMode(ProgressMode mode);
void ReportProgress(const std::string& stage, const std::string& message);

// Wakes a wait for a file to appear or change in one directory: Wait() returns
// once something in `dir` was created, written, closed after writing or renamed
// into it (inotify, which also sees writes through a FUSE mount by processes on
// this machine), or after `max_wait`, whichever is first. Where inotify is not
// available it only sleeps. A poll every few ms through the mount cost a FUSE
// request or three each; a poll every 10-20 ms added 5-10 ms to each start.
class DirWatch {
 public:
  explicit DirWatch(const std::string& dir);
  ~DirWatch();
  DirWatch(const DirWatch&) = delete;
  DirWatch& operator=(const DirWatch&) = delete;
  void Wait(absl::Duration max_wait);

 private:
  int fd_ = -1;
};

// 127.0.0.1:PORT.
std::string Address(int port);
// The daemon's process runs and listens on its port.
bool DaemonUp(const Daemon& d);

// Parses a point in time: RFC 3339 ("2026-11-21T19:30:00Z", "+02:00" offsets),
// Postgres' text form ("2026-11-21 19:30:00.123456+00"), "@UNIX_SECONDS", or a
// relative "-5m" / "-90s" / "-2h" (before now).
absl::StatusOr<absl::Time> ParseTimestamp(const std::string& text);

// A point of history as users type it: an LSN ("0/16B3748") or a time
// (ParseTimestamp).
struct PointText {
  std::optional<Lsn> lsn;
  std::optional<absl::Time> time;
};
absl::StatusOr<PointText> ParsePoint(const std::string& text);

// Sets the point of a branch, snapshot or restore request: an LSN or a time (at
// most one; neither leaves the request's default, the head).
template <typename Request>
absl::Status SetPoint(Request& req, const std::optional<std::string>& lsn,
                      const std::optional<std::string>& at) {
  if (lsn && at) return absl::InvalidArgumentError("give --lsn or --at, not both");
  if (lsn) {
    absl::StatusOr<Lsn> l = Lsn::Parse(*lsn);
    if (!l.ok()) return l.status();
    req.set_lsn(l->value());
  }
  if (at) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(*at);
    if (!t.ok()) return t.status();
    req.set_at_unix_micros(absl::ToUnixMicros(*t));
  }
  return absl::OkStatus();
}

// `base` shortened so that base + suffix is at most kMaxNameLength (common/ids.h)
// long: a valid name derived from any valid branch name.
std::string NameWithSuffix(const std::string& base, const std::string& suffix);
// BRANCH-KIND-<unix millis>: the name of an ephemeral branch of the CLI's own (a
// read-only endpoint's copy, a view for a query or a workflow).
std::string EphemeralName(const std::string& branch, const std::string& kind);
std::string FormatTimestamp(absl::Time t);
// JSON for --json output: null for InfinitePast (never) and for "" (nothing).
nlohmann::json TimeOrNull(absl::Time t);
// "1.5 GiB", "12.0 MiB", "3.2 KiB", "512 B".
std::string FormatBytes(uint64_t n);
// TimeOrNull for a time in Unix microseconds, where 0 means none.
nlohmann::json MicrosOrNull(int64_t unix_micros);
nlohmann::json TextOrNull(const std::string& s);

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_CLI_UTIL_H_
