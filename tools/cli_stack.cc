// Cli: the local stack: daemons under the supervisor, `up`, `down`, `status`.
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "auth/private_file.h"
#include "cambium/v1/safekeeper_service.grpc.pb.h"
#include "common/files.h"
#include "common/net.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/supervisor.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kSafekeepers = 3;
// How long `up` waits for the daemons to listen, and a command for a pageserver the
// supervisor is restarting (its backoff is at most 30 s).
constexpr absl::Duration kDaemonWait = absl::Seconds(60);

const DaemonRecord* FindRecord(const SupervisorState& s, const std::string& name) {
  for (const DaemonRecord& r : s.daemons) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

json DaemonJson(const Daemon& d, const SupervisorState& s) {
  const DaemonRecord* r = FindRecord(s, d.name);
  return {{"name", d.name},
          {"address", Address(d.port)},
          {"metrics_url", MetricsUrl(d.http_port)},
          {"pid", d.pid},
          {"running", DaemonUp(d)},
          {"log", d.log},
          {"restarts", r ? r->restarts : 0},
          {"last_restart", r ? TimeOrNull(r->last_restart) : json(nullptr)},
          {"last_exit", r ? TextOrNull(r->last_exit) : json(nullptr)}};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cli>> Cli::Open(const std::string& data_dir,
                                               const std::string& tenant, bool create) {
  CAMBIUM_ASSIGN_OR_RETURN(DataDir dir, DataDir::Open(data_dir, create));
  std::unique_ptr<Cli> cli(new Cli(std::move(dir)));
  if (cli->dir_.HasStack()) {
    CAMBIUM_ASSIGN_OR_RETURN(cli->stack_, cli->dir_.LoadStack());
  }
  cli->LoadSupervisor();
  if (!tenant.empty()) cli->stack_.tenant = tenant;
  cli->UseApiToken();
  return cli;
}

v1::ManagementService::Stub& Cli::mgmt() {
  if (!mgmt_) {
    // The pageserver serving this command's tenant (cli_tenant.cc); the first one
    // when the placement cannot be read (its calls then fail with NOT_FOUND).
    absl::StatusOr<const Daemon*> placed = PageserverOf(stack_.tenant);
    mgmt_ = StubFor(placed.ok() ? **placed : stack_.pageserver);
  }
  return *mgmt_;
}

std::string Cli::SafekeeperAddresses() const {
  std::vector<std::string> out;
  for (const Daemon& sk : stack_.safekeepers) out.push_back(Address(sk.port));
  return absl::StrJoin(out, ",");
}

void Cli::LoadSupervisor() {
  absl::StatusOr<SupervisorState> s = LoadSupervisorState(dir_.path());
  supervisor_ = s.ok() ? *std::move(s) : SupervisorState();
  // The supervisor knows the current pids: it restarts daemons behind the CLI's back.
  for (Daemon* d : stack_.Daemons()) {
    if (const DaemonRecord* r = FindRecord(supervisor_, d->name)) d->pid = r->pid;
  }
}

bool Cli::SupervisorRunning() const { return SupervisorAlive(supervisor_.pid); }

bool Cli::StackUp() const { return DaemonUp(stack_.pageserver) || SupervisorRunning(); }

absl::Status Cli::RequireStack() {
  if (DaemonUp(stack_.pageserver)) return absl::OkStatus();
  // The supervisor may be restarting it: wait for that rather than fail.
  const absl::Time deadline = absl::Now() + kDaemonWait;
  while (SupervisorRunning() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
    LoadSupervisor();
    if (DaemonUp(stack_.pageserver)) return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "the Cambium stack in %s is not running; start it with `cambium up --data-dir %s`",
      dir_.path(), dir_.path()));
}

absl::Status Cli::PrepareDaemons(bool new_ports) {
  stack_.safekeepers.resize(kSafekeepers);
  // `kind` names the operator's settings for this kind of daemon, D/KIND.toml
  // (keys are the flag names), passed as --config when it exists; a flag the stack
  // sets itself on the command line wins over the same key there.
  auto prepare = [&](Daemon& d, const std::string& kind,
                     std::vector<std::string> argv) -> absl::Status {
    // A recorded pid that now belongs to another program is not ours to adopt or kill.
    if (!ProcessHasArgs(d.pid, {"--data-dir", dir_.Sub(d.name)})) d.pid = 0;
    if (!DaemonUp(d)) {
      if (d.pid > 0) (void)StopProcess(d.pid, SIGKILL, absl::Seconds(5));  // half-dead
      d.pid = 0;
      if (new_ports || d.port == 0 || LoopbackPortOpen(d.port)) {
        CAMBIUM_ASSIGN_OR_RETURN(d.port, FreeLoopbackPort());
      }
      if (new_ports || d.http_port == 0 || LoopbackPortOpen(d.http_port)) {
        CAMBIUM_ASSIGN_OR_RETURN(d.http_port, FreeLoopbackPort());
      }
    }
    d.log = dir_.Sub("logs/" + d.name + ".log");
    const std::string config = dir_.Sub(kind + ".toml");
    if (std::filesystem::exists(config)) argv.insert(argv.end(), {"--config", config});
    argv.insert(argv.end(), {"--listen", Address(d.port), "--log-file", d.log,
                             "--service-token-file", ServiceTokenFile()});
    // /metrics, /healthz and /readyz (docs/metrics.md). A daemon adopted from an
    // older stack has none until it is restarted.
    if (d.http_port > 0) argv.insert(argv.end(), {"--http-listen", Address(d.http_port)});
    // A running daemon started with other arguments (a safekeeper moved to a new
    // port) is restarted with the new ones.
    if (d.pid > 0 && !d.argv.empty() && d.argv != argv) {
      (void)StopProcess(d.pid, SIGTERM, absl::Seconds(30));
      d.pid = 0;
    }
    d.argv = std::move(argv);
    return absl::OkStatus();
  };
  for (int i = 0; i < kSafekeepers; ++i) {
    Daemon& sk = stack_.safekeepers[i];
    sk.name = absl::StrFormat("sk%d", i);
    CAMBIUM_RETURN_IF_ERROR(prepare(
        sk, "safekeeper",
        {ProgramPath("cambium-safekeeper"), "--data-dir", dir_.Sub(sk.name), "--id", sk.name}));
  }
  if (!stack_.more_pageservers.empty()) CAMBIUM_RETURN_IF_ERROR(PrepareEtcd());
  stack_.pageserver.name = "pageserver";
  for (size_t i = 0; i < stack_.more_pageservers.size(); ++i) {
    stack_.more_pageservers[i].name = absl::StrFormat("pageserver%d", i + 1);
  }
  for (const Daemon* ps : stack_.Pageservers()) {
    Daemon& d = *const_cast<Daemon*>(ps);
    std::vector<std::string> argv = {ProgramPath("cambium-pageserver"),
                                     "--data-dir",
                                     dir_.Sub(d.name),
                                     "--safekeepers",
                                     SafekeeperAddresses(),
                                     "--admin-token-file",
                                     AdminTokenFile(),
                                     "--import-dir",
                                     dir_.ImportDir()};
    if (!stack_.object_store.empty()) {
      CAMBIUM_RETURN_IF_ERROR(EnsureLocalStore(HistoryStoreUrl(d)));
      argv.insert(argv.end(), {"--object-store", HistoryStoreUrl(d)});
    }
    if (!stack_.more_pageservers.empty()) {
      // Tenants move between them through one shared store.
      CAMBIUM_RETURN_IF_ERROR(EnsureLocalStore(TransferStoreUrl()));
      argv.insert(argv.end(), {"--transfer-store", TransferStoreUrl()});
    }
    if (const std::string key = StackCredentialsFile(dir_.path());
        !key.empty() && !stack_.object_store.empty()) {
      // Secrets are read from a file, never passed on a command line.
      argv.insert(argv.end(), {"--object-store-credentials", key});
    }
    CAMBIUM_RETURN_IF_ERROR(prepare(d, "pageserver", std::move(argv)));
  }
  // The supervisor reads the command lines (and the pids to adopt) from here.
  return dir_.SaveStack(stack_);
}

absl::Status Cli::StartSupervisor() {
  CAMBIUM_ASSIGN_OR_RETURN(const std::string exe, SelfExe());
  const std::string out = dir_.Sub("logs/supervisor.out");
  CAMBIUM_ASSIGN_OR_RETURN(const int pid,
                           StartDetached({exe, "supervise", "--data-dir", dir_.path()}, out));
  // It records itself before it starts anything.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    LoadSupervisor();
    if (supervisor_.pid == pid) return absl::OkStatus();
    if (!ProcessAlive(pid) || absl::Now() > deadline) {
      return absl::InternalError(absl::StrFormat("the supervisor did not start; see %s:\n%s%s", out,
                                                 FileTail(out, 1500),
                                                 FileTail(dir_.Sub("logs/supervisor.log"), 1500)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

absl::Status Cli::WaitForDaemons(absl::Time since) {
  const absl::Time deadline = absl::Now() + kDaemonWait;
  for (;;) {
    LoadSupervisor();
    const Daemon* down = nullptr;
    for (const Daemon* d : stack_.Daemons()) {
      if (!DaemonUp(*d) && down == nullptr) down = d;
    }
    if (down == nullptr) return absl::OkStatus();
    const DaemonRecord* r = FindRecord(supervisor_, down->name);
    std::string why;
    if (r != nullptr && r->last_exit_time >= since) {
      why = "exited (" + r->last_exit + ")";
    } else if (!SupervisorRunning()) {
      why = "is not running, and the supervisor exited (see its log " +
            dir_.Sub("logs/supervisor.log") + ")";
    } else if (absl::Now() > deadline) {
      why = "is not listening after " + absl::FormatDuration(kDaemonWait);
    }
    if (!why.empty()) {
      return absl::UnavailableError(absl::StrFormat(
          "%s %s; see %s:\n%s%s\nThe supervisor retries it with a backoff; `cambium down` "
          "stops everything.",
          down->name, why, down->log, FileTail(down->log + ".out", 1500),
          FileTail(down->log, 1500)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::Status Cli::EnsureDaemons() {
  // A port that was free when picked can be bound by another program before the
  // daemon binds it (parallel test suites, anything else on the machine). Such a
  // daemon exits at once saying it cannot listen: the daemons that did not come up
  // start again on new ports, a few times, before `up` gives up.
  constexpr int kAttempts = 4;
  for (int attempt = 1;; ++attempt) {
    const absl::Time since = absl::Now();
    const bool starting = !SupervisorRunning();
    if (starting) {
      ReportProgress("daemons", "starting the pageserver and 3 safekeepers");
      CAMBIUM_RETURN_IF_ERROR(PrepareDaemons(/*new_ports=*/attempt > 1));
      CAMBIUM_RETURN_IF_ERROR(StartSupervisor());
    }
    absl::Status up = WaitForDaemons(since);
    mgmt_.reset();
    CAMBIUM_RETURN_IF_ERROR(dir_.SaveStack(stack_));
    if (up.ok() || !starting || attempt == kAttempts ||
        !absl::StrContains(up.message(), "cannot listen on")) {
      return up;
    }
    ReportProgress("daemons", "a port was taken before its daemon could listen; new ports");
    CAMBIUM_RETURN_IF_ERROR(StopSupervisor());
  }
}

absl::Status Cli::EnsureMainBranch() {
  CAMBIUM_ASSIGN_OR_RETURN(
      v1::ListTenantsResponse tenants,
      ControlCall(mgmt(), &v1::ManagementService::Stub::ListTenants, v1::ListTenantsRequest()));
  bool exists = false;
  for (const auto& t : tenants.tenants()) exists |= t.name() == stack_.tenant;
  if (!exists) {
    v1::CreateTenantRequest req;
    req.set_name(stack_.tenant);
    CAMBIUM_RETURN_IF_ERROR(
        ControlCall(mgmt(), &v1::ManagementService::Stub::CreateTenant, req).status());
  }
  if (GetBranch("main").ok()) return absl::OkStatus();
  // A deleted main is brought back with undelete, never replaced by an empty one.
  if (auto trash = BranchList(/*deleted=*/true); trash.ok()) {
    for (const json& b : trash->json) {
      if (b["name"] != "main") continue;
      return absl::FailedPreconditionError(
          "branch main is in the trash: `cambium branch undelete main` brings it back (or "
          "`cambium branch delete main --purge` frees it, and the next `up` starts an empty "
          "main)");
    }
  }
  // First run: a fresh cluster from the installed initdb becomes branch main. It
  // runs as postgres, so in the runtime directory (the data directory is private),
  // in the import directory the pageserver reads from without following links.
  CAMBIUM_RETURN_IF_ERROR(dir_.PrepareRuntimeDir());
  const std::string import_dir = dir_.ImportDir();
  const std::string pgdata = import_dir + "/initdb";
  std::error_code ec;
  fs::remove_all(import_dir, ec);
  // 0711 whatever the umask: postgres passes through to its own directory inside.
  if (mkdir(import_dir.c_str(), 0711) != 0 || chmod(import_dir.c_str(), 0711) != 0) {
    return ErrnoToStatus(errno, "mkdir " + import_dir);
  }
  if (mkdir(pgdata.c_str(), 0700) != 0) return ErrnoToStatus(errno, "mkdir " + pgdata);
  CAMBIUM_RETURN_IF_ERROR(GiveToPostgres({pgdata}));
  SubprocessOptions initdb;
  // No trust, even in the branch's own pg_hba.conf (endpoints use the CLI's,
  // cli_access.cc): peer on the socket, SCRAM over TCP.
  initdb.argv = InitdbArgv(std::string(CAMBIUM_PG_BINDIR) + "/initdb", pgdata);
  initdb.user = "postgres";
  ReportProgress("initdb", "creating branch main: initdb");
  auto out = CheckCommand(initdb, absl::Minutes(5));
  if (!out.ok()) {
    fs::remove_all(import_dir, ec);
    return Annotate(out.status(), "initdb");
  }
  ReportProgress("import", "importing the new cluster into the pageserver as branch main");
  v1::ImportPgdataRequest imp;
  imp.set_tenant(stack_.tenant);
  imp.set_branch("main");
  imp.set_pgdata_path(pgdata);
  v1::BranchInfo main;
  grpc::ClientContext c;
  PrepareControlCall(c, absl::Minutes(10));
  absl::Status imported = FromGrpcStatus(mgmt().ImportPgdata(&c, imp, &main));
  fs::remove_all(import_dir, ec);
  CAMBIUM_RETURN_IF_ERROR(imported);
  // Production is protected from the start: delete, reset and restore are refused
  // until an admin unprotects it.
  return BranchProtect("main", true).status();
}

absl::StatusOr<Output> Cli::Up(const UpArgs& args) {
  CAMBIUM_RETURN_IF_ERROR(EnsureSecrets());
  UseApiToken();
  CAMBIUM_RETURN_IF_ERROR(ConfigureObjectStore(args));
  CAMBIUM_RETURN_IF_ERROR(ConfigurePageservers(args.pageservers));
  CAMBIUM_RETURN_IF_ERROR(EnsureDaemons());
  CAMBIUM_RETURN_IF_ERROR(RegisterPageservers());
  CAMBIUM_RETURN_IF_ERROR(EnsureMainBranch());
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  bool have_main = false;
  for (auto it = endpoints.begin(); it != endpoints.end();) {
    EndpointState& ep = *it;
    // What `down` stopped starts again; what `endpoint stop` stopped stays stopped,
    // except main's endpoint, which `up` always serves.
    if (EndpointRunning(ep) || (ep.stopped && ep.name != "main")) {
      have_main |= ep.name == "main";
      ++it;
      continue;
    }
    // The record of an endpoint whose branch is gone (deleted behind this stack's
    // back, or by an older version that kept such records) is dropped, never fatal.
    if (absl::IsNotFound(GetBranch(ep.name).status())) {
      (void)StopEndpoint(ep, /*forget=*/true, /*release=*/false);
      it = endpoints.erase(it);
      continue;
    }
    have_main |= ep.name == "main";
    ep.stopped = false;
    ReportProgress("endpoint", "restarting endpoint " + ep.name);
    auto started = StartEndpoint(ep, /*takeover=*/true);
    if (!started.ok()) return Annotate(started.status(), "restarting endpoint " + ep.name);
    ep = *std::move(started);
    ++it;
  }
  if (!have_main) {
    ReportProgress("endpoint", "starting the endpoint of branch main");
    CAMBIUM_ASSIGN_OR_RETURN(EndpointState main,
                             StartEndpoint(EndpointState{.name = "main", .branch = "main"}, false));
    // Where LoadEndpoints would list it: sorted by name.
    auto at = std::lower_bound(endpoints.begin(), endpoints.end(), main,
                               [](const auto& a, const auto& b) { return a.name < b.name; });
    endpoints.insert(at, std::move(main));
  }
  Output out;
  out.json = {{"data_dir", dir_.path()},
              {"tenant", stack_.tenant},
              {"pageserver", DaemonJson(stack_.pageserver, supervisor_)},
              {"pageservers", json::array()},
              {"endpoints", json::array()}};
  for (const Daemon* ps : stack_.Pageservers()) {
    out.json["pageservers"].push_back(DaemonJson(*ps, supervisor_));
  }
  std::string main_conn;
  for (const EndpointState& ep : endpoints) {
    out.json["endpoints"].push_back(EndpointJson(ep));
    if (ep.name == "main") main_conn = Url(ep);
  }
  out.json["connection_string"] = main_conn;
  out.text =
      absl::StrFormat("Cambium is up (data in %s).\nBranch main: %s\nConnect with: psql %s\n",
                      dir_.path(), main_conn.empty() ? "(no endpoint)" : main_conn, main_conn);
  return out;
}

absl::Status Cli::StopSupervisor() {
  // First, so that nothing `down` stops is started again.
  absl::Status stopped = absl::OkStatus();
  if (SupervisorRunning()) stopped = StopProcess(supervisor_.pid, SIGTERM, absl::Seconds(10));
  LoadSupervisor();  // the pids it saw last
  return stopped;
}

absl::StatusOr<Output> Cli::Down() {
  // Everything is stopped even if one piece fails; the first failure is reported.
  ReportProgress("down", "stopping the supervisor, endpoints and daemons");
  absl::Status first = StopSupervisor();
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  for (EndpointState& ep : endpoints) {
    // A running endpoint has a live shim; a crashed one a shim pid to clean up.
    // `up` takes over their writers, so nothing is released here.
    if (ep.shim_pid > 0 || ep.restart_pending) {
      first.Update(StopEndpoint(ep, /*forget=*/false, /*release=*/false));
    }
  }
  RemoveRuntimeDir();
  // Pageservers first (they follow the safekeepers), etcd last.
  std::vector<Daemon*> daemons = stack_.Daemons();
  std::reverse(daemons.begin(), daemons.end());
  for (Daemon* d : daemons) first.Update(StopProcess(d->pid, SIGTERM, absl::Seconds(30)));
  // Daemons of this stack nobody recorded (a supervisor killed between a start and
  // its state write): found by their data directories.
  std::vector<std::string> strays = {dir_.Sub("pageserver")};
  for (const Daemon* d : daemons) strays.push_back(dir_.Sub(d->name));
  for (const std::string& data : strays) first.Update(KillProcessesWithArgs({"--data-dir", data}));
  first.Update(KillProcessesWithArgs({"supervise", "--data-dir", dir_.path()}));
  for (Daemon* d : daemons) d->pid = 0;
  if (!stack_.safekeepers.empty()) first.Update(dir_.SaveStack(stack_));
  if (supervisor_.started != absl::InfinitePast()) {
    supervisor_.pid = 0;
    for (DaemonRecord& r : supervisor_.daemons) r.pid = 0;
    first.Update(SaveSupervisorState(dir_.path(), supervisor_));
  }
  CAMBIUM_RETURN_IF_ERROR(first);
  Output out;
  out.json = {{"data_dir", dir_.path()}, {"stopped", true}};
  out.text =
      absl::StrFormat("Cambium in %s is down; `cambium up` brings everything back.\n", dir_.path());
  return out;
}

absl::StatusOr<Output> Cli::Status() {
  Output out;
  out.json = {{"data_dir", dir_.path()}, {"tenant", stack_.tenant}};
  const bool supervised = SupervisorRunning();
  out.json["supervisor"] = {
      {"name", "supervisor"},
      {"pid", supervised ? supervisor_.pid : 0},
      {"running", supervised},
      {"started", supervised ? TimeOrNull(supervisor_.started) : json(nullptr)},
      {"log", dir_.Sub("logs/supervisor.log")}};
  out.json["pageserver"] = DaemonJson(stack_.pageserver, supervisor_);
  out.json["pageservers"] = json::array();
  for (const Daemon* ps : stack_.Pageservers()) {
    out.json["pageservers"].push_back(DaemonJson(*ps, supervisor_));
  }
  out.json["etcd"] =
      stack_.etcd.argv.empty() ? json(nullptr) : DaemonJson(stack_.etcd, supervisor_);
  out.json["object_store"] =
      stack_.object_store.empty() ? json(nullptr) : json(stack_.object_store);
  // Per branch, the archived WAL no upload holds yet; null when the pageserver does
  // not answer at once (status never waits for it).
  out.json["remote_lag_bytes"] = nullptr;
  std::map<std::string, v1::TimelineRef> timelines;  // by branch; empty when no answer
  if (DaemonUp(stack_.pageserver)) {
    v1::ListBranchesRequest req;
    req.set_tenant(stack_.tenant);
    v1::ListBranchesResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    if (mgmt().ListBranches(&ctx, req, &resp).ok()) {
      json lag = json::object();
      for (const v1::BranchInfo& b : resp.branches()) {
        if (b.has_uploaded_lsn()) lag[b.name()] = BranchJson(b)["remote_lag_bytes"];
        v1::TimelineRef& ref = timelines[b.name()];
        *ref.mutable_tenant_id() = b.tenant_id();
        *ref.mutable_timeline_id() = b.timeline_id();
      }
      if (!stack_.object_store.empty()) out.json["remote_lag_bytes"] = std::move(lag);
    }
  }
  out.json["safekeepers"] = json::array();
  for (const Daemon& sk : stack_.safekeepers) {
    out.json["safekeepers"].push_back(DaemonJson(sk, supervisor_));
  }
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  out.json["endpoints"] = json::array();
  // Per running endpoint, the safekeepers refusing its branch's new WAL
  // (backpressure on unarchived WAL; docs/safekeeper.md): names, [] for none, null
  // when unknown (the branch not listed, the service token unreadable, no
  // safekeeper answered). Safekeepers take the stack's service token only.
  std::vector<std::pair<std::string, std::unique_ptr<v1::SafekeeperService::Stub>>> sks;
  if (absl::StatusOr<std::string> token = auth::ReadSecretFile(ServiceTokenFile()); token.ok()) {
    for (const Daemon& sk : stack_.safekeepers) {
      if (DaemonUp(sk)) {
        sks.emplace_back(sk.name,
                         v1::SafekeeperService::NewStub(MakeChannel(Address(sk.port), *token)));
      }
    }
  }
  auto wal_backpressure = [&](const EndpointState& ep) -> json {
    auto t = timelines.find(ep.name);  // the timeline an endpoint writes is its branch's
    if (ep.shim_pid <= 0 || t == timelines.end()) return nullptr;
    v1::SafekeeperStatusRequest req;
    *req.mutable_timeline() = t->second;
    json refusing = json::array();
    bool answered = false;
    for (const auto& [name, stub] : sks) {
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
      v1::SafekeeperStatusResponse resp;
      if (!stub->Status(&ctx, req, &resp).ok()) continue;
      answered = true;
      if (resp.backpressured()) refusing.push_back(name);
    }
    return answered ? refusing : json(nullptr);
  };
  // No passwords: status answers whatever state the pageserver is in.
  for (const EndpointState& ep : endpoints) {
    json e = EndpointJson(ep, Secrets::kOmit);
    e["wal_backpressure"] = wal_backpressure(ep);
    out.json["endpoints"].push_back(std::move(e));
  }
  std::string text =
      absl::StrFormat("data directory: %s (tenant %s)\n", dir_.path(), stack_.tenant);
  text += absl::StrFormat("  %-11s %-8s %-16s log %s\n", "supervisor",
                          supervised ? "running" : "stopped",
                          supervised ? absl::StrFormat("pid %d", supervisor_.pid) : "-",
                          out.json["supervisor"]["log"].get<std::string>());
  auto line = [&](const json& d) {
    std::string restarts = absl::StrFormat("restarts %d", d["restarts"].get<int>());
    if (!d["last_exit"].is_null()) {
      restarts += absl::StrFormat(" (last exit: %s", d["last_exit"].get<std::string>());
      if (!d["last_restart"].is_null()) {
        restarts += ", restarted " + d["last_restart"].get<std::string>();
      }
      restarts += ")";
    }
    text += absl::StrFormat(
        "  %-11s %-8s %-16s %-10s %s  log %s\n", d["name"].get<std::string>(),
        d["running"].get<bool>() ? "running" : "stopped", d["address"].get<std::string>(),
        d["pid"].get<int>() > 0 ? absl::StrFormat("pid %d", d["pid"].get<int>()) : "-", restarts,
        d["log"].get<std::string>());
  };
  line(out.json["pageserver"]);
  for (size_t i = 1; i < out.json["pageservers"].size(); ++i) line(out.json["pageservers"][i]);
  if (out.json["etcd"].is_object()) line(out.json["etcd"]);
  if (!stack_.object_store.empty()) {
    text += absl::StrFormat("  %-11s %s\n", "objects", stack_.object_store);
    if (out.json["remote_lag_bytes"].is_object()) {
      for (const auto& [branch, lag] : out.json["remote_lag_bytes"].items()) {
        text += absl::StrFormat("              branch %s: %d bytes of WAL not uploaded yet\n",
                                branch, lag.get<uint64_t>());
      }
    }
  }
  for (const auto& sk : out.json["safekeepers"]) line(sk);
  for (const auto& ep : out.json["endpoints"]) {
    text += absl::StrFormat(
        "  endpoint %-20s %-8s %-10s %s\n           logs %s, %s\n", ep["name"].get<std::string>(),
        ep["state"].get<std::string>(),
        ep["pid"].get<int>() > 0 ? absl::StrFormat("pid %d", ep["pid"].get<int>()) : "-",
        ep["connection_string"].get<std::string>(), ep["postgres_log"].get<std::string>(),
        ep["shim_log"].get<std::string>());
    if (ep["wal_backpressure"].is_array() && !ep["wal_backpressure"].empty()) {
      std::vector<std::string> names;
      for (const auto& n : ep["wal_backpressure"]) names.push_back(n.get<std::string>());
      text += absl::StrFormat(
          "           commits wait: %s refuse new WAL until the pageserver archives more "
          "(max-unarchived-wal; see `cambium logs pageserver`)\n",
          absl::StrJoin(names, ", "));
    }
  }
  out.text = text;
  return out;
}

}  // namespace cambium::cli
