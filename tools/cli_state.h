// The state of a local Cambium stack, as the `cambium` CLI keeps it in its data
// directory (where it is: LocateDataDir):
//
//   stack.json              daemons: command lines, ports and pids; the tenant
//   supervisor.json         the supervisor's pid, the daemons' pids and restarts
//                           (written by the supervisor only; tools/supervisor.h)
//   pageserver/, sk0..2/    daemon data
//   logs/                   daemon and supervisor logs
//   endpoints/NAME/         one compute: endpoint.json, scratch, logs
//
// The data directory is 0700 (docs/security.md). What the `postgres` user must
// reach lives in a runtime directory outside it, /run/cambium/<hash of the data
// directory's path> (0711, root's):
//
//   ep/NAME/                one compute, owned by postgres, 0700: pgdata (the
//                           shim's mount), the Unix socket, pg_hba.conf, pg_ident.conf
//   import/                 initdb's output while `up` imports it (the pageserver's
//                           --import-dir)
//
// Files are written atomically (temp file + rename) so a crash never leaves half a
// state file. Several stacks with different data directories run side by side.
//
// Thread-safety: not thread-safe; one CLI process at a time per data directory
// (commands take a lock file).
#ifndef CAMBIUM_TOOLS_CLI_STATE_H_
#define CAMBIUM_TOOLS_CLI_STATE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cambium::cli {

// Where the runtime directories of every stack live.
inline constexpr char kRuntimeRoot[] = "/run/cambium";

struct Daemon {
  std::string name;  // "pageserver", "sk0", ...
  int port = 0;
  // Its HTTP server (/metrics, /healthz, /readyz; metrics/http_server.h); 0 = none.
  int http_port = 0;
  int pid = 0;
  std::string log;
  // The whole command line (binary, --listen 127.0.0.1:port, --log-file log, ...):
  // what the supervisor starts, and starts again after a crash.
  std::vector<std::string> argv;
};

struct StackState {
  std::string tenant = "default";
  // The pageserver's object store URL (`up --object-store`, never a secret); "" = none.
  std::string object_store;
  Daemon pageserver;
  std::vector<Daemon> safekeepers;
  // More pageservers (`up --pageservers N`): pageserver1, pageserver2, ... Tenants are
  // placed over all of them, with the placement in etcd (docs/scale-out.md).
  std::vector<Daemon> more_pageservers;
  Daemon etcd;  // with more_pageservers only (port 0 otherwise)

  // Every daemon the supervisor runs, in start order: safekeepers, etcd,
  // pageservers (the pageservers follow the safekeepers from their start).
  std::vector<Daemon*> Daemons();
  std::vector<const Daemon*> Daemons() const;
  // The pageservers: `pageserver` first.
  std::vector<const Daemon*> Pageservers() const;
};

struct EndpointState {
  // The branch mounted, and the directory name: the branch the user asked for, or for
  // a read-only endpoint its ephemeral branch BRANCH-ro-N (or BRANCH-q-N for `query` and
  // the views of diff, changes and migrate: cli_views.cc).
  std::string name;
  std::string branch;  // the branch the user asked for
  bool read_only = false;
  bool follow = false;  // a read replica of `branch` (cli_follow.cc)
  int port = 0;
  // Both 0: stopped (by `down`, or a failed start of a stopped endpoint). Nonzero
  // but dead: crashed, and the supervisor starts it again.
  int postgres_pid = 0;
  int shim_pid = 0;
  // The shim's HTTP server (/metrics, /healthz, /readyz); 0 = none.
  int http_port = 0;
  // A restart by the supervisor failed: it tries again after its backoff (the pids
  // are 0 or dead then).
  bool restart_pending = false;
  // Stopped by `endpoint stop` (pids 0): kept for its port, but `up` does not start
  // it again (an endpoint that `down` stopped, it does).
  bool stopped = false;
};

// Whether the supervisor should start this endpoint again: it was neither stopped
// nor taken down, and its postgres or its shim is gone.
bool EndpointCrashed(const EndpointState& ep);

// Reads every endpoints/*/endpoint.json of `data_dir` without taking the data
// directory's lock (the CLI replaces them atomically): for the supervisor. Sorted
// by name.
absl::StatusOr<std::vector<EndpointState>> LoadEndpointFiles(const std::string& data_dir);

// Reads a stack.json without taking the data directory's lock (its writers replace
// it atomically): for the supervisor, which must never wait for a CLI command.
absl::StatusOr<StackState> LoadStackFile(const std::string& path);

// Where a command finds the stack's data directory, the same from any working
// directory, first match wins:
//   1. --data-dir (the `flag` argument, if not empty);
//   2. $CAMBIUM_DATA_DIR;
//   3. `data_dir = "..."` in a config file: $CAMBIUM_CONFIG (an error if it cannot be
//      read), else $XDG_CONFIG_HOME/cambium/cambium.toml (~/.config/...), else
//      /etc/cambium/cambium.toml;
//   4. ./.cambium, only if it exists (where older versions kept it);
//   5. the default: /var/lib/cambium for root, else $XDG_DATA_HOME/cambium
//      (~/.local/share/cambium).
struct DataDirLocation {
  std::string path;
  std::string source;  // "--data-dir", "$CAMBIUM_DATA_DIR", "config FILE", "./.cambium", "default"
};
absl::StatusOr<DataDirLocation> LocateDataDir(const std::string& flag);

class DataDir {
 public:
  // Resolves the directory and takes its lock. With `create` the directory is made
  // if missing (`up`); without, a directory that holds no stack is NOT_FOUND, so
  // that `status` or `down` somewhere else never leaves an empty stack behind.
  static absl::StatusOr<DataDir> Open(const std::string& path, bool create = true);
  DataDir(DataDir&&) noexcept;
  ~DataDir();

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& rel) const { return path_ + "/" + rel; }
  std::string EndpointDir(const std::string& name) const { return Sub("endpoints/" + name); }
  // /run/cambium/<16 hex digits of the path's hash>: see the top of this file.
  std::string RuntimeDir() const;
  // R/ep/NAME; a long NAME is shortened (its first 24 characters and a hash), so
  // that the socket path R/ep/NAME/.s.PGSQL.PORT fits in 107 bytes.
  std::string EndpointRuntimeDir(const std::string& name) const;
  std::string ImportDir() const { return RuntimeDir() + "/import"; }
  // Creates the runtime directory (0711) and checks that root owns it.
  absl::Status PrepareRuntimeDir() const;

  bool HasStack() const;
  absl::StatusOr<StackState> LoadStack() const;
  absl::Status SaveStack(const StackState& state) const;
  absl::StatusOr<std::vector<EndpointState>> LoadEndpoints() const;
  absl::Status SaveEndpoint(const EndpointState& ep) const;
  absl::Status RemoveEndpoint(const std::string& name) const;

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_ = -1;
};

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_CLI_STATE_H_
