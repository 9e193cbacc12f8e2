// ChaosStack: one local Cambium stack driven only through the real `cambium` CLI
// (what users run is what is tested), living on its own tmpfs so that the suite can
// fill the disk, and removed without a trace however the test ends.
//
// Layout: ROOT (a fresh directory under $TMPDIR) holds `data/`, a tmpfs mount that
// is the stack's --data-dir. A watcher (ExitGuard) runs tests/chaos/cleanup.sh ROOT
// if this process dies; the destructor runs the same script. The script resumes
// stopped processes, runs `cambium down`, kills whatever still runs from
// ROOT/data, unmounts every FUSE mount below it, then the tmpfs, and removes ROOT.
//
// The stack serves tenant "chaos", created with a short PITR window (gRPC, the one
// call the CLI does not offer) so that GC can be checked within a round; every CLI
// command is given --tenant chaos. RunGc is also called over gRPC: the CLI has no
// GC command.
//
// Thread-safety: every method may be called from any thread; the CLI serializes
// its commands with a lock on the data directory.
#ifndef CAMBIUM_TESTS_CHAOS_CHAOS_STACK_H_
#define CAMBIUM_TESTS_CHAOS_CHAOS_STACK_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tests/harness/exit_guard.h"

namespace cambium::chaos {

struct ChaosStackOptions {
  // Size of the tmpfs holding the stack (RAM, used only as far as it is filled;
  // the disk-full fault fills it). Default: 4 GiB.
  uint64_t tmpfs_bytes = 4ull << 30;
  // PITR window of the chaos tenant. Default: 3 s.
  absl::Duration pitr_window = absl::Seconds(3);
  // The tenant every command addresses. Default: chaos.
  std::string tenant = "chaos";
};

// The outcome of one CLI command.
struct CliResult {
  int code = -1;                 // exit code; -1 if it could not run or timed out
  nlohmann::json out;            // stdout parsed (discarded on a parse error)
  std::string err;               // stderr (or why it could not run)
  std::string Describe() const;  // "exit 1: <stderr>"
  bool ok() const { return code == 0; }
};

// Processes of the stack as `cambium status --json` reports them.
struct DaemonInfo {
  std::string name;
  pid_t pid = 0;
  int port = 0;
  bool running = false;
  std::string log;
};
struct EndpointInfo {
  std::string name;
  pid_t postgres_pid = 0;
  pid_t shim_pid = 0;
  int port = 0;
  bool running = false;
  std::string connection_string;
  std::string postgres_log;
  std::string shim_log;
};
struct StackStatus {
  pid_t supervisor_pid = 0;  // 0: no supervisor runs
  DaemonInfo pageserver;
  std::vector<DaemonInfo> safekeepers;
  std::vector<EndpointInfo> endpoints;
  const EndpointInfo* endpoint(const std::string& name) const;
};

class ChaosStack {
 public:
  // Mounts the tmpfs, runs `cambium up`, moves the stack to the chaos tenant.
  static absl::StatusOr<std::unique_ptr<ChaosStack>> Create(ChaosStackOptions options = {});
  ~ChaosStack();

  // `cambium --json --data-dir D --tenant T <args>`.
  CliResult Cambium(std::vector<std::string> args, absl::Duration timeout = absl::Minutes(4));
  absl::StatusOr<StackStatus> Status();

  // `cambium up`: starts whatever daemon or endpoint is not running.
  absl::Status Up();
  // `cambium endpoint start NAME`; returns its connection string. The CLI is
  // killed after `timeout` (Postgres and the shim keep running: stop the endpoint).
  absl::StatusOr<std::string> StartEndpoint(const std::string& branch,
                                            absl::Duration timeout = absl::Minutes(4));
  absl::Status StopEndpoint(const std::string& branch);
  // Connection string of the running endpoint of `branch` (from status).
  absl::StatusOr<std::string> ConnectionString(const std::string& branch);
  // Branch JSON from `branch list`.
  absl::StatusOr<nlohmann::json> Branch(const std::string& name);

  // GC of the chaos tenant (gRPC RunGc).
  struct GcResult {
    uint64_t versions_removed = 0;
    std::string cutoff;  // the highest cutoff LSN GC applied ("0/0" if none)
  };
  absl::StatusOr<GcResult> RunGc();

  const std::string& root() const { return root_; }
  // The stack's --data-dir (the tmpfs mount).
  std::string data_dir() const { return root_ + "/data"; }
  std::string pageserver_dir() const { return data_dir() + "/pageserver"; }
  std::string safekeeper_dir(const std::string& name) const { return data_dir() + "/" + name; }
  const ChaosStackOptions& options() const { return options_; }

  // Bytes free on the tmpfs.
  absl::StatusOr<uint64_t> FreeBytes() const;
  // Fills the tmpfs to the last byte with a ballast file; FreeBallast removes it.
  absl::Status FillDisk();
  void FreeBallast();

  // Runs the cleanup script now (the destructor does too).
  void Destroy();

 private:
  ChaosStack(ChaosStackOptions options, std::string root)
      : options_(std::move(options)), root_(std::move(root)) {}
  absl::Status MountAndGuard();
  absl::Status MoveToChaosTenant();
  std::string ballast_path() const { return data_dir() + "/ballast"; }

  const ChaosStackOptions options_;
  const std::string root_;
  std::unique_ptr<testing::ExitGuard> guard_;
  bool destroyed_ = false;
};

// Signals a whole process group if `pid` leads one, else the process.
void SignalProcess(pid_t pid, int sig);
// True while /proc/PID exists and is not a zombie.
bool ProcessLive(pid_t pid);
// Live processes whose parent is `pid`.
std::vector<pid_t> ChildProcesses(pid_t pid);
// The command line of `pid` (spaces for NULs), for messages.
std::string ProcessTitle(pid_t pid);

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_CHAOS_STACK_H_
