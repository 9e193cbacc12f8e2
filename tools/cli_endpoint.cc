// Cli: endpoints (a cambium-shim mount plus a postgres on it) and time-travel queries.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/net.h"
#include "common/pg_roles.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"

namespace cambium::cli {
namespace {

// Whether the postmaster with this pid says it accepts connections: line 1 of
// postmaster.pid is its pid, line 8 its state ("ready", or "standby" once a hot
// standby is consistent; PostgreSQL 15's pidfile.h).
bool PostmasterReady(const std::string& pid_file, int pid) {
  absl::StatusOr<std::string> content = ReadFileToString(pid_file);
  if (!content.ok()) return false;
  const std::vector<std::string> lines = absl::StrSplit(*content, '\n');
  if (lines.size() < 8 || lines[0] != std::to_string(pid)) return false;
  const std::string state(absl::StripAsciiWhitespace(lines[7]));
  return state == "ready" || state == "standby";
}

namespace fs = std::filesystem;
using nlohmann::json;

// Removes Unix-socket lock files of postmasters that are gone. Postgres itself
// checks with kill(pid, 0), which a zombie (a killed postmaster nobody reaped yet)
// still passes.
void RemoveStaleSocketLocks(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".s.PGSQL.", 0) != 0 || name.size() < 5 ||
        name.substr(name.size() - 5) != ".lock")
      continue;
    std::ifstream in(entry.path());
    int pid = 0;
    in >> pid;
    if (!ProcessAlive(pid)) {
      fs::remove(entry.path(), ec);
      fs::remove(entry.path().string().substr(0, entry.path().string().size() - 5), ec);
    }
  }
}

}  // namespace

bool Cli::EndpointRunning(const EndpointState& ep) const {
  return ep.postgres_pid > 0 && ProcessAlive(ep.postgres_pid) && ProcessAlive(ep.shim_pid) &&
         LoopbackPortOpen(ep.port);
}

json Cli::EndpointJson(const EndpointState& ep, Secrets secrets) {
  const EndpointRecord* restarts = nullptr;
  for (const EndpointRecord& r : supervisor_.endpoints) {
    if (r.name == ep.name) restarts = &r;
  }
  return {{"name", ep.name},
          {"branch", ep.branch},
          {"served_branch", ep.name},
          {"connection_string", Url(ep, /*read_only=*/false, secrets)},
          {"read_only_connection_string", Url(ep, /*read_only=*/true, secrets)},
          {"maintenance_connection_string", MaintenanceUrl(ep)},
          {"socket_dir", dir_.EndpointRuntimeDir(ep.name)},
          {"port", ep.port},
          {"pid", ep.postgres_pid},
          {"shim_pid", ep.shim_pid},
          {"metrics_url", MetricsUrl(ep.http_port)},
          {"read_only", ep.read_only},
          {"follow", ep.follow},
          {"running", EndpointRunning(ep)},
          {"state", EndpointRunning(ep)   ? "running"
                    : EndpointCrashed(ep) ? "crashed"
                                          : "stopped"},
          // Restarts by the supervisor after a crash (tools/supervisor.h).
          {"restarts", restarts ? restarts->restarts : 0},
          {"last_restart", restarts ? TimeOrNull(restarts->last_restart) : json(nullptr)},
          {"last_exit", restarts ? TextOrNull(restarts->last_exit) : json(nullptr)},
          {"restart_error", restarts ? TextOrNull(restarts->last_error) : json(nullptr)},
          {"postgres_log", dir_.EndpointDir(ep.name) + "/postgres.log"},
          {"shim_log", dir_.EndpointDir(ep.name) + "/shim.log"}};
}

absl::StatusOr<EndpointState> Cli::StartEndpoint(EndpointState ep, bool takeover,
                                                 bool credentials) {
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(ep.name));
  const std::string dir = dir_.EndpointDir(ep.name);
  const std::string mount = dir_.EndpointRuntimeDir(ep.name) + "/pgdata";
  // Leftovers of a crashed endpoint: processes, and a dead FUSE mount.
  if (ep.postgres_pid > 0) (void)StopProcess(ep.postgres_pid, SIGKILL, absl::Seconds(5));
  if (ep.shim_pid > 0) {
    takeover = true;
    (void)StopProcess(ep.shim_pid, SIGKILL, absl::Seconds(5));
  }
  CleanStaleMount(dir + "/pgdata");  // where mounts were before the runtime directory
  std::error_code ec;
  fs::remove_all(dir + "/scratch", ec);
  fs::remove(dir + "/ready", ec);
  // The shim's scratch stays root's, in the private data directory: the postgres
  // user never reaches it (docs/security.md).
  fs::create_directories(dir + "/scratch", ec);
  CAMBIUM_RETURN_IF_ERROR(PrepareEndpointRuntime(ep, /*tcp=*/false));
  // The shim's /metrics (its port may move: only monitoring reads it, from status).
  if (ep.http_port == 0 || LoopbackPortOpen(ep.http_port)) {
    CAMBIUM_ASSIGN_OR_RETURN(ep.http_port, FreeLoopbackPort());
  }
  // The pageserver serving the tenant now; after a move the shim follows it.
  CAMBIUM_ASSIGN_OR_RETURN(const Daemon* pageserver, PageserverOf(stack_.tenant));
  std::vector<std::string> shim = {ProgramPath("cambium-shim"),
                                   "--pageserver",
                                   Address(pageserver->port),
                                   "--safekeepers",
                                   SafekeeperAddresses(),
                                   "--tenant",
                                   IdHex(b.tenant_id()),
                                   "--timeline",
                                   IdHex(b.timeline_id()),
                                   "--mountpoint",
                                   mount,
                                   "--scratch",
                                   dir + "/scratch",
                                   "--endpoint",
                                   ep.name,
                                   "--ready-file",
                                   dir + "/ready",
                                   "--log-file",
                                   dir + "/shim.log",
                                   "--service-token-file",
                                   ServiceTokenFile(),
                                   "--http-listen",
                                   absl::StrFormat("127.0.0.1:%d", ep.http_port)};
  if (takeover) shim.push_back("--takeover");
  // The operator's settings for every shim (keys are its flag names), as for the
  // daemons (PrepareDaemons); read at each endpoint start.
  if (const std::string config = dir_.Sub("shim.toml"); std::filesystem::exists(config)) {
    shim.insert(shim.end(), {"--config", config});
  }
  ReportProgress("mount", "mounting branch " + ep.name);
  CAMBIUM_ASSIGN_OR_RETURN(ep.shim_pid, StartDetached(shim, dir + "/shim.out"));
  // Only this copy of `ep` knows the new pids: a failed start stops what it started
  // (and records the endpoint as stopped) rather than leave it to the caller.
  absl::Status started = StartPostgres(ep, credentials, /*fresh_storage=*/true);
  if (!started.ok()) {
    (void)StopEndpoint(ep, /*forget=*/false);
    return started;
  }
  return ep;
}

absl::Status Cli::StartPostgres(EndpointState& ep, bool credentials, bool fresh_storage) {
  const std::string dir = dir_.EndpointDir(ep.name);
  const std::string pgdata = dir_.EndpointRuntimeDir(ep.name) + "/pgdata";
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  DirWatch mounted(dir);  // the shim writes `ready` once mounted
  while (!fs::exists(dir + "/ready")) {
    if (!ProcessAlive(ep.shim_pid) || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrFormat("the storage of branch %s did not mount:\n%s%s",
                                                    ep.name, FileTail(dir + "/shim.out", 2000),
                                                    FileTail(dir + "/shim.log", 1000)));
    }
    mounted.Wait(absl::Milliseconds(20));
  }
  // An endpoint keeps its port (given with --port, or chosen at its first start):
  // scripts hold its connection string. Never silently another one.
  if (ep.port == 0) {
    CAMBIUM_ASSIGN_OR_RETURN(ep.port, FreeLoopbackPort());
  } else if (LoopbackPortOpen(ep.port)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "port %d of endpoint %s is taken by another program; free it, or start the endpoint "
        "with --port N",
        ep.port, ep.name));
  }
  const std::string standby_signal = pgdata + "/standby.signal";
  std::error_code ec;
  if (!ep.read_only) {
    // Inherited from a read-only endpoint's ephemeral branch: not this one's mode.
    fs::remove(standby_signal, ec);
  } else if (credentials && !ep.follow && !fs::exists(standby_signal)) {
    // (A follower never runs as a primary: WAL of its own would end its history's
    // agreement with its branch's. Its roles and passwords are its branch's.)
    // The ephemeral branch's catalog holds whatever passwords its source had at the
    // branch point: one run as a primary (peer socket only) sets the source's own.
    CAMBIUM_RETURN_IF_ERROR(RunPostgres(ep, fresh_storage));
    CAMBIUM_RETURN_IF_ERROR(SetUpAccess(ep, /*passwords=*/true, /*tcp=*/false));
    CAMBIUM_RETURN_IF_ERROR(StopProcess(ep.postgres_pid, SIGINT, absl::Minutes(2)));
    ep.postgres_pid = 0;
  }
  if (ep.read_only) {
    // A hot standby: Postgres itself refuses every write, whoever asks
    // (docs/security.md). It replays what is in pg_wal and waits for more.
    CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(standby_signal, ""));
  }
  CAMBIUM_RETURN_IF_ERROR(RunPostgres(ep, fresh_storage));
  // Without credentials (a time-travel query, a branch being masked) only the peer
  // socket serves: no passwords are set and no TCP client gets in.
  return SetUpAccess(ep, /*passwords=*/!ep.read_only && credentials, /*tcp=*/credentials);
}

absl::Status Cli::RunPostgres(EndpointState& ep, bool fresh_storage) {
  const std::string dir = dir_.EndpointDir(ep.name);
  const std::string rd = dir_.EndpointRuntimeDir(ep.name);
  RemoveStaleSocketLocks(rd);
  std::vector<std::string> postgres = {std::string(CAMBIUM_PG_BINDIR) + "/postgres",
                                       "-D",
                                       rd + "/pgdata",
                                       "-p",
                                       std::to_string(ep.port),
                                       "-c",
                                       "listen_addresses=127.0.0.1",
                                       "-c",
                                       "checkpoint_timeout=60s"};
  // A backend writes WAL a page at a time once the WAL buffers are full, and each
  // write to pg_wal is a FUSE request: with 4 MB of buffers (the default with 128 MB
  // of shared buffers) and the WAL writer's default 200 ms round, `pgbench -i -s 30`
  // made ~34,000 of them. The WAL writer writing (and flushing) every 10 ms keeps
  // the buffers from filling: `pgbench -i -s 20` made ~3,200 WAL writes (16 MB of
  // buffers: ~2,700) and took the same time, 7.0-7.4 s (issue 11). 16 MB of buffers
  // did as well, but Postgres zeroes them at every start: on this VM, where a page fault
  // costs ~20 us, 50-60 ms more from exec to ready (vanilla Postgres, 4 starts
  // each: 234-267 ms against 188-218 ms), in the critical path of every branch's
  // first query. TPC-B (4 clients, 8 alternating runs) and the 1-client latency
  // did not move.
  postgres.insert(postgres.end(), {"-c", "wal_writer_delay=10ms"});
  const std::vector<std::string> access = PostgresAccessArgs(ep);
  postgres.insert(postgres.end(), access.begin(), access.end());
  // Durability is not a user setting: the command line beats ALTER SYSTEM and
  // postgresql.conf (ARCHITECTURE.md section 2 needs full-page writes; WAL must be
  // fsynced through the shim, which is what waits for the safekeepers' quorum).
  // (open_datasync, one FUSE request per commit instead of a write and an fsync,
  // measured slower: 1.50-1.52 ms per 1-client TPC-B transaction against
  // 1.38-1.43 ms, and 4-client tps 0.93x; issue 11.)
  postgres.insert(postgres.end(), {"-c", "full_page_writes=on", "-c", "fsync=on", "-c",
                                   "wal_sync_method=fdatasync"});
  // Recovery's prefetcher (recovery_prefetch=try, PG15's default) posix_fadvises
  // the blocks the WAL ahead will touch; on this mount each advice becomes a read
  // through FUSE and a GetPages round trip, in the replay's critical path, for
  // blocks replay then mostly overwrites with their full-page image. Measured on a
  // new branch after 10 s of TPC-B (scale 5): 4,318 block fetches and 1.00 s of
  // redo with it, 237 fetches and 0.30 s without (issue 11). Blocks replay does
  // need (no image, not in shared buffers) are read as it reaches them.
  postgres.insert(postgres.end(), {"-c", "recovery_prefetch=off"});
  if (fresh_storage) {
    // Crash recovery begins by fsyncing every file of the data directory, in case
    // the crashed server left writes in the OS cache. A shim that just mounted has
    // none: everything it serves is durable on the pageserver or the safekeepers.
    // Through FUSE that walk was an open, fsync and close per file (1.5 s for a
    // database of 1,300 files, growing with the number of relations); syncfs does
    // nothing on this mount. A postgres restarted on a shim that kept running
    // still walks and fsyncs (its writes before the crash may be unsynced there).
    postgres.insert(postgres.end(), {"-c", "recovery_init_sync_method=syncfs"});
  }
  if (ep.read_only) {
    // Not the defense (the standby is), but a clear message before the standby's.
    postgres.insert(postgres.end(),
                    {"-c", "default_transaction_read_only=on", "-c", "hot_standby=on"});
    if (ep.follow) {
      // Streams its branch's WAL from the branch's endpoint (cli_follow.cc).
      CAMBIUM_ASSIGN_OR_RETURN(std::string conninfo, FollowConninfo(ep));
      postgres.insert(postgres.end(), {"-c", "primary_conninfo=" + conninfo});
    } else {
      // No new WAL ever arrives: poll pg_wal, and log "waiting for WAL", every 5
      // minutes rather than every 5 s.
      postgres.insert(postgres.end(), {"-c", "wal_retrieve_retry_interval=5min"});
    }
  }
  ReportProgress("postgres", absl::StrFormat("starting postgres on branch %s (port %d); it "
                                             "replays the WAL since its last checkpoint",
                                             ep.name, ep.port));
  CAMBIUM_ASSIGN_OR_RETURN(ep.postgres_pid,
                           StartDetached(postgres, dir + "/postgres.log", "postgres"));
  CAMBIUM_RETURN_IF_ERROR(dir_.SaveEndpoint(ep));
  const int pid = ep.postgres_pid;
  absl::Status up =
      WaitForLoopbackPort(ep.port, absl::Minutes(10), [pid] { return ProcessAlive(pid); });
  if (!up.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("postgres on branch %s did not start; log %s:\n%s", ep.name,
                        dir + "/postgres.log", FileTail(dir + "/postgres.log", 2000)));
  }
  // Accepting TCP is not accepting queries: wait until recovery is done (a hot
  // standby: until it is consistent), as `pg_ctl start -w` does: the postmaster
  // writes its state into line 8 of postmaster.pid. (Polling with pg_isready cost
  // an exec and a postmaster fork every 20 ms, a fifth of both cores while a
  // branch replayed its WAL.)
  const std::string pid_file = rd + "/pgdata/postmaster.pid";
  const absl::Time ready_deadline = absl::Now() + absl::Minutes(10);
  DirWatch pid_file_written(rd + "/pgdata");
  for (;;) {
    if (PostmasterReady(pid_file, pid)) return absl::OkStatus();
    if (!ProcessAlive(ep.postgres_pid) || absl::Now() > ready_deadline) {
      return absl::UnavailableError(
          absl::StrFormat("postgres on branch %s did not become ready:\n%s", ep.name,
                          FileTail(dir + "/postgres.log", 2000)));
    }
    // Woken by the postmaster's writes to its pid file; at least every 50 ms (a
    // crash is seen then).
    pid_file_written.Wait(absl::Milliseconds(50));
  }
}

absl::StatusOr<bool> Cli::ReleaseWriter(const std::string& name) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::ReleaseWriterRequest req;
  req.set_tenant(stack_.tenant);
  req.set_branch(name);
  req.set_writer(name);
  absl::StatusOr<v1::ReleaseWriterResponse> resp =
      ControlCall(mgmt(), &v1::ManagementService::Stub::ReleaseWriter, req);
  absl::Status released = resp.status();
  // Another writer holds the branch (it took over), or the branch is gone: nothing
  // of this endpoint's is left to release. A pageserver older than ReleaseWriter
  // lets the lease expire instead.
  if (absl::IsFailedPrecondition(released) || absl::IsNotFound(released) ||
      absl::IsUnimplemented(released)) {
    return false;
  }
  CAMBIUM_RETURN_IF_ERROR(released);
  return resp->released();
}

absl::Status Cli::StopEndpoint(EndpointState& ep, bool forget, bool release) {
  const std::string dir = dir_.EndpointDir(ep.name);
  // Fast shutdown: a shutdown checkpoint, every file fsynced through the shim.
  // StopProcess sends nothing for a pid of 0 (an endpoint that is not running).
  absl::Status pg = StopProcess(ep.postgres_pid, SIGINT, absl::Minutes(2));
  // The shim makes everything durable, detaches from the pageserver and unmounts.
  absl::Status shim = StopProcess(ep.shim_pid, SIGTERM, absl::Minutes(2));
  CleanStaleMount(dir_.EndpointRuntimeDir(ep.name) + "/pgdata");
  // A shim that was killed (or is killed here after its grace) never detached: its
  // writer would block the next plain start for the lease. Released only once the
  // shim is surely gone, never under a live one; a no-op after a clean detach.
  // With the whole stack down nobody can attach anyway, and once it is up again
  // `endpoint stop` of the branch releases a writer left behind (EndpointStop).
  absl::Status released = absl::OkStatus();
  if (release && shim.ok() && StackUp()) {
    released = ReleaseWriter(ep.name).status();
    if (!released.ok()) {
      released = absl::Status(
          released.code(),
          absl::StrFormat("endpoint %s is stopped, but the pageserver did not release its "
                          "writer (%s); run `cambium endpoint stop %s` again once it answers",
                          ep.name, released.message(), ep.name));
    }
  }
  ep.postgres_pid = 0;
  ep.shim_pid = 0;
  ep.restart_pending = false;
  if (forget && released.ok()) {
    // A read-only endpoint's branch is its own ephemeral copy: it goes with it.
    if (ep.read_only) (void)DeleteBranchRpc(ep.name);
    std::error_code ec;
    const std::string rd = dir_.EndpointRuntimeDir(ep.name);
    struct stat dir_st, mount_st;  // never through a mount that is still there
    if (lstat(rd.c_str(), &dir_st) == 0 && lstat((rd + "/pgdata").c_str(), &mount_st) == 0 &&
        dir_st.st_dev == mount_st.st_dev) {
      fs::remove_all(rd, ec);
    }
    CAMBIUM_RETURN_IF_ERROR(dir_.RemoveEndpoint(ep.name));
  } else {
    CAMBIUM_RETURN_IF_ERROR(dir_.SaveEndpoint(ep));
  }
  if (!pg.ok()) return pg;
  return shim.ok() ? released : shim;
}

absl::StatusOr<Output> Cli::EndpointStart(const EndpointStartArgs& args) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  const bool read_only = args.read_only || args.follow;
  EndpointState ep{.name = args.branch,
                   .branch = args.branch,
                   .read_only = read_only,
                   .follow = args.follow,
                   .port = args.port};
  // A read-write endpoint needs the right to the owner's credentials (develop on an
  // unprotected branch, admin on any), checked by the pageserver before anything
  // starts: the shim itself attaches with the stack's service credential.
  if (!read_only) CAMBIUM_RETURN_IF_ERROR(GetCredentials(args.branch, false).status());
  // A follower needs its branch's read-write endpoint to stream from.
  if (args.follow) CAMBIUM_RETURN_IF_ERROR(FollowConninfo(ep).status());
  if (read_only) {
    // Read-only endpoints serve an ephemeral branch: nothing they do reaches `branch`.
    ep.name = EphemeralName(args.branch, "ro");
    CAMBIUM_RETURN_IF_ERROR(CreateBranch(ep.name, args.branch, std::nullopt, std::nullopt,
                                         absl::Hours(24), BranchKind::kReadOnlyCopy)
                                .status());
  }
  std::optional<EndpointState> previous;  // a stopped or crashed endpoint of the branch
  if (!read_only) {
    CAMBIUM_ASSIGN_OR_RETURN(auto existing, dir_.LoadEndpoints());
    for (const EndpointState& e : existing) {
      if (e.name != ep.name) continue;
      if (EndpointRunning(e)) {
        // Scripts may repeat a start (and the supervisor may have restarted a crashed
        // endpoint first): the running endpoint is the answer, unless it was asked
        // for on another port.
        if (args.port != 0 && args.port != e.port) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "an endpoint is already running on branch %s on port %d; stop it with "
              "`cambium endpoint stop %s` to move it",
              args.branch, e.port, args.branch));
        }
        Output out{EndpointJson(e), ""};
        out.json["already_running"] = true;
        out.text =
            absl::StrFormat("Endpoint on branch %s is already running: %s\n", args.branch, Url(e));
        return out;
      }
      previous = e;
      ep.shim_pid = e.shim_pid;  // a crashed endpoint: cleaned up and taken over below
      ep.postgres_pid = e.postgres_pid;
      if (ep.port == 0) ep.port = e.port;
    }
  }
  auto started = StartEndpoint(ep, false);
  if (!started.ok()) {
    // StartEndpoint stopped its processes and released its writer. What the start
    // created goes too: a new endpoint's record (with the port that failed), a
    // read-only endpoint's ephemeral branch; an earlier endpoint stays as it was.
    EndpointState cleaned = previous.value_or(ep);
    cleaned.postgres_pid = 0;
    cleaned.shim_pid = 0;
    if (previous) {
      (void)dir_.SaveEndpoint(cleaned);
    } else {
      (void)StopEndpoint(cleaned, /*forget=*/true);
    }
    return started.status();
  }
  Output out{EndpointJson(*started), ""};
  out.json["already_running"] = false;
  out.text = absl::StrFormat("Endpoint on branch %s%s is ready: %s\n", args.branch,
                             read_only ? " (read-only)" : "", Url(*started));
  return out;
}

absl::StatusOr<Output> Cli::EndpointStop(const std::string& branch, bool all) {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  json stopped = json::array();
  bool recorded = false;
  // The endpoint named `branch`; with --all, or when there is none, the read-only
  // endpoints of the branch `branch` too.
  bool exact = false;
  for (const EndpointState& ep : endpoints) exact |= ep.name == branch;
  for (EndpointState& ep : endpoints) {
    const bool named = ep.name == branch;
    if (!named && !((all || !exact) && ep.read_only && ep.branch == branch)) continue;
    recorded = true;
    const bool live = ep.postgres_pid > 0 || ep.shim_pid > 0 || ep.restart_pending;
    if (ep.read_only) {
      // A read-only endpoint's branch is its own ephemeral copy: both go.
      CAMBIUM_RETURN_IF_ERROR(StopEndpoint(ep, /*forget=*/true));
      stopped.push_back(ep.name);
      continue;
    }
    // Kept, stopped, with its port: the next start serves the same connection
    // string. (StopEndpoint also releases a writer a crashed shim left behind.)
    ep.stopped = true;
    CAMBIUM_RETURN_IF_ERROR(StopEndpoint(ep, /*forget=*/false, /*release=*/live));
    if (live) stopped.push_back(ep.name);
  }
  json out = {{"stopped", stopped}, {"already_stopped", stopped.empty()}};
  if (!stopped.empty()) {
    return Output{out, absl::StrFormat("Stopped %d endpoint(s) of %s.\n", stopped.size(), branch)};
  }
  if (!recorded && StackUp()) {
    // No endpoint recorded, but a writer of that name may be left behind (a start
    // interrupted before it recorded the endpoint, a stop while the stack was
    // down): it is dead, since no endpoint of this stack runs as `branch`.
    absl::StatusOr<bool> released = ReleaseWriter(branch);
    // A token that may not write the branch has no writer of it to release.
    if (!released.ok() && !absl::IsPermissionDenied(released.status())) {
      return released.status();
    }
    if (released.ok() && *released) {
      out["released_writer"] = branch;
      return Output{
          out,
          absl::StrFormat("Released the writer of branch %s (its endpoint was gone).\n", branch)};
    }
    // Stopping what does not run is done, on a branch that exists.
    CAMBIUM_RETURN_IF_ERROR(GetBranch(branch).status());
  }
  return Output{out, absl::StrFormat("No endpoint of %s is running.\n", branch)};
}

absl::StatusOr<Output> Cli::EndpointRecover(const std::string& name) {
  auto nothing = [&](const std::string& reason) {
    return Output{{{"name", name}, {"restarted", false}, {"reason", reason}},
                  absl::StrFormat("Endpoint %s: nothing to restart (%s).\n", name, reason)};
  };
  // Asked by a supervisor that has gone since (`down` stops it first, then waits
  // for this command's lock): whatever `down` did stands.
  if (!SupervisorAlive(getppid())) return nothing("the supervisor that asked has stopped");
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  auto it = std::find_if(endpoints.begin(), endpoints.end(),
                         [&](const EndpointState& e) { return e.name == name; });
  if (it == endpoints.end()) return nothing("no such endpoint: it was stopped");
  EndpointState ep = *it;
  if (!EndpointCrashed(ep)) {
    return nothing(ep.postgres_pid == 0 ? "it is stopped" : "it is running");
  }
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  const bool shim_serves = ProcessAlive(ep.shim_pid) &&
                           fs::exists(dir_.EndpointDir(ep.name) + "/ready") &&
                           !ProcessAlive(ep.postgres_pid);
  LogInfo("endpoint_recover", {{"name", ep.name},
                               {"postgres_pid", ep.postgres_pid},
                               {"shim_pid", ep.shim_pid},
                               {"metrics_url", MetricsUrl(ep.http_port)},
                               {"only_postgres", shim_serves}});
  absl::StatusOr<EndpointState> started = absl::UnknownError("not started");
  if (shim_serves) {
    // Only postgres died (killed, or it gave up, e.g. when crash recovery hit a full
    // disk): the shim still serves everything it acknowledged; postgres recovers
    // from the WAL as after any crash.
    ep.postgres_pid = 0;
    absl::Status s = StartPostgres(ep, /*credentials=*/true, /*fresh_storage=*/false);
    started = s.ok() ? absl::StatusOr<EndpointState>(ep) : s;
    if (!s.ok()) (void)StopProcess(ep.postgres_pid, SIGKILL, absl::Seconds(5));
  } else {
    // The shim is gone (or postgres outlived it): everything again, taking over the
    // dead shim's writer.
    started = StartEndpoint(ep, /*takeover=*/true);
  }
  if (!started.ok()) {
    // Still wanted: the supervisor tries again after its backoff.
    ep.postgres_pid = 0;
    if (!shim_serves) ep.shim_pid = 0;
    ep.restart_pending = true;
    (void)dir_.SaveEndpoint(ep);
    return started.status();
  }
  started->restart_pending = false;
  CAMBIUM_RETURN_IF_ERROR(dir_.SaveEndpoint(*started));
  Output out{EndpointJson(*started, Secrets::kOmit), ""};
  out.json["restarted"] = true;
  out.text = absl::StrFormat("Endpoint %s restarted.\n", name);
  return out;
}

absl::StatusOr<Output> Cli::EndpointList() {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  Output out{json::array(), absl::StrFormat("%-28s %-16s %-9s %-8s %-8s %s\n", "NAME", "BRANCH",
                                            "READ-ONLY", "STATE", "RESTARTS", "CONNECTION")};
  for (const EndpointState& ep : endpoints) {
    // Listing waits little for passwords: a sick pageserver must not hang it.
    json j = EndpointJson(ep, Secrets::kQuick);
    if (ep.follow) j.update(FollowerLag(ep, endpoints));
    out.text += absl::StrFormat("%-28s %-16s %-9s %-8s %-8d %s\n", ep.name, ep.branch,
                                ep.read_only ? "yes" : "no",
                                EndpointRunning(ep)   ? "running"
                                : EndpointCrashed(ep) ? "crashed"
                                                      : "stopped",
                                j["restarts"].get<int>(), Url(ep, false, Secrets::kQuick));
    out.json.push_back(std::move(j));
  }
  return out;
}

absl::StatusOr<Output> Cli::Query(const std::string& branch, const std::string& at,
                                  const std::string& sql) {
  // A hot standby at the time, queried as the superuser through its socket: Postgres
  // refuses every write. Rows come back typed (tools/pg_client.h).
  json out;
  CAMBIUM_RETURN_IF_ERROR(
      WithView({.branch = branch, .at = at}, [&](const ViewSession& view) -> absl::Status {
        CAMBIUM_ASSIGN_OR_RETURN(PgConn conn,
                                 Connect(view.socket_dir, view.port, kSuperuserRole, ""));
        CAMBIUM_ASSIGN_OR_RETURN(out, QueryJson(conn.get(), sql));
        out["lsn"] = view.lsn;
        return absl::OkStatus();
      }));
  out["branch"] = branch;
  out["at"] = at;
  return Output{out, FormatTable(out)};
}

}  // namespace cambium::cli
