// Supervisor: keeps the local stack's pageserver and safekeepers running.
//
// `cambium up` starts it detached (`cambium supervise --data-dir D`, a hidden
// subcommand of the same binary, so it shares the stack's code and needs no
// install step of its own). It reads the daemons' command lines from stack.json,
// adopts the daemons that already run, starts the others, and from then on restarts
// a daemon that exits, with the same command line and therefore the same port,
// after a backoff (0.2 s doubling to 30 s; back to 0.2 s once a daemon ran for
// 10 s). Every exit and restart is logged and counted in supervisor.json, which
// `cambium status` shows.
//
// It also watches the endpoints (endpoints/*/endpoint.json, read without the lock):
// one whose postgres or shim died without `endpoint stop` or `down` (kill -9, an
// OOM kill, a postgres that gave up when crash recovery hit ENOSPC on a full disk)
// is started again by running `cambium endpoint recover NAME` as a child, with the
// same doubling backoff. That command takes the data directory's lock like every
// CLI command and checks again under it, so a concurrent `endpoint stop` wins: it
// restarts only postgres if the shim still serves the mount, and the whole endpoint
// (taking over its writer) if the shim died. It does nothing once the supervisor
// that asked has gone (`down` stops the supervisor first). Restarts are counted per
// endpoint in supervisor.json; `status` and `endpoint list` show them.
//
// The supervisor never takes the data directory's lock: CLI commands hold it for
// their whole run, and a supervisor waiting for it would not restart anything
// meanwhile. It only reads stack.json (replaced atomically by the CLI) and is the
// only writer of supervisor.json while it runs. `cambium down` stops it (SIGTERM)
// before it stops the daemons; the supervisor leaves them running when it exits,
// so a supervisor that crashed is replaced by `cambium up` without a restart of
// anything else. A daemon the supervisor adopted is not its child: its exit is
// noticed by polling and its exit status is unknown.
//
// Thread-safety: RunSupervisor runs the whole process (one thread, signals blocked).
// The state functions are stateless.
#ifndef CAMBIUM_TOOLS_SUPERVISOR_H_
#define CAMBIUM_TOOLS_SUPERVISOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cambium::cli {

struct SupervisorOptions {
  // Wait before the first restart of a daemon that crashed. Default: 200 ms.
  absl::Duration initial_backoff = absl::Milliseconds(200);
  // The wait doubles with every crash up to this. Default: 30 s.
  absl::Duration max_backoff = absl::Seconds(30);
  // A daemon that came up (its port accepted a connection during its run) or ran
  // this long before it exited is restarted after initial_backoff again: only
  // failed starts back off. Default: 10 s. (Chaos seeds 116-118: a safekeeper that
  // had crash-looped on a damaged segment, was repaired and came up, waited 25.6 s
  // after its next kill -9, with a second safekeeper down, so commits stalled.)
  absl::Duration stable_after = absl::Seconds(10);
  // How often adopted daemons are checked and the state file is refreshed
  // (children's exits wake the supervisor at once). Default: 100 ms.
  absl::Duration poll_interval = absl::Milliseconds(100);
  // How often the endpoints' state files are read. Default: 1 s.
  absl::Duration endpoint_poll_interval = absl::Seconds(1);
};

// One supervised daemon as supervisor.json records it.
struct DaemonRecord {
  std::string name;
  int pid = 0;  // 0: not running (waiting to be restarted, or stopped)
  int port = 0;
  int restarts = 0;                                  // restarts after an exit
  absl::Time last_restart = absl::InfinitePast();    // InfinitePast: never
  std::string last_exit;                             // "signal 9 (SIGKILL)", "exit code 1", ...
  absl::Time last_exit_time = absl::InfinitePast();  // InfinitePast: never exited
  absl::Time next_start = absl::InfinitePast();      // when pid is 0: the planned restart
};

// One endpoint the supervisor restarted at least once (or is restarting).
struct EndpointRecord {
  std::string name;
  int restarts = 0;                                  // successful restarts
  absl::Time last_restart = absl::InfinitePast();    // InfinitePast: never
  std::string last_exit;                             // "postgres exited", "shim exited"
  absl::Time last_exit_time = absl::InfinitePast();  // when that was noticed
  std::string last_error;                            // why the last restart failed, if it did
};

struct SupervisorState {
  int pid = 0;  // the supervisor's pid; 0 once it stopped
  absl::Time started = absl::InfinitePast();
  std::vector<DaemonRecord> daemons;
  std::vector<EndpointRecord> endpoints;
};

std::string SupervisorStatePath(const std::string& data_dir);
// NOT_FOUND if there is no state yet (a stack that never had a supervisor).
absl::StatusOr<SupervisorState> LoadSupervisorState(const std::string& data_dir);
absl::Status SaveSupervisorState(const std::string& data_dir, const SupervisorState& state);

// "exit code 1", "signal 9 (SIGKILL)": a waitpid status in words.
std::string DescribeWaitStatus(int status);

// True if `pid` is a live supervisor process (not a reused pid).
bool SupervisorAlive(int pid);

// Runs the supervisor of the stack in `data_dir` (an absolute path) until SIGTERM
// or SIGINT, or until the stack's stack.json disappears (the directory was removed).
absl::Status RunSupervisor(const std::string& data_dir, const SupervisorOptions& options = {});

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_SUPERVISOR_H_
