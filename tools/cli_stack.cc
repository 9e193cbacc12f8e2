// Cli: the local stack: daemons, `up`, `down`, `status`.
#include <signal.h>

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/net.h"
#include "common/service.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kSafekeepers = 3;

absl::Status StartDaemon(Daemon& d, std::vector<std::string> argv, const std::string& log) {
  if (d.pid > 0 && ProcessAlive(d.pid) && d.port > 0 && LoopbackPortOpen(d.port)) {
    return absl::OkStatus();
  }
  if (d.pid > 0) (void)StopProcess(d.pid, SIGKILL, absl::Seconds(5));  // half-dead: restart
  if (d.port == 0 || LoopbackPortOpen(d.port)) {
    CAMBIUM_ASSIGN_OR_RETURN(d.port, FreeLoopbackPort());
  }
  argv.push_back("--listen");
  argv.push_back(absl::StrFormat("127.0.0.1:%d", d.port));
  argv.push_back("--log-file");
  argv.push_back(log);
  CAMBIUM_ASSIGN_OR_RETURN(d.pid, StartDetached(argv, log + ".out"));
  d.log = log;
  const int pid = d.pid;
  absl::Status up =
      WaitForLoopbackPort(d.port, absl::Seconds(60), [pid] { return ProcessAlive(pid); });
  if (!up.ok()) {
    return absl::UnavailableError(absl::StrFormat("%s did not start (%s); see %s:\n%s%s", d.name,
                                                  up.message(), log, FileTail(log + ".out", 1500),
                                                  FileTail(log, 1500)));
  }
  return absl::OkStatus();
}

json DaemonJson(const Daemon& d) {
  const bool alive = ProcessAlive(d.pid) && LoopbackPortOpen(d.port);
  return {{"name", d.name},
          {"address", absl::StrFormat("127.0.0.1:%d", d.port)},
          {"pid", d.pid},
          {"running", alive},
          {"log", d.log}};
}

}  // namespace

absl::StatusOr<std::unique_ptr<Cli>> Cli::Open(const std::string& data_dir,
                                               const std::string& tenant) {
  CAMBIUM_ASSIGN_OR_RETURN(DataDir dir, DataDir::Open(data_dir));
  std::unique_ptr<Cli> cli(new Cli(std::move(dir)));
  if (cli->dir_.HasStack()) {
    CAMBIUM_ASSIGN_OR_RETURN(cli->stack_, cli->dir_.LoadStack());
  }
  if (!tenant.empty()) cli->stack_.tenant = tenant;
  return cli;
}

v1::ManagementService::Stub& Cli::mgmt() {
  if (!mgmt_) {
    mgmt_ = v1::ManagementService::NewStub(
        MakeChannel(absl::StrFormat("127.0.0.1:%d", stack_.pageserver.port)));
  }
  return *mgmt_;
}

std::string Cli::SafekeeperAddresses() const {
  std::vector<std::string> out;
  for (const Daemon& sk : stack_.safekeepers)
    out.push_back(absl::StrFormat("127.0.0.1:%d", sk.port));
  return absl::StrJoin(out, ",");
}

absl::Status Cli::RequireStack() {
  if (stack_.pageserver.pid == 0 || !ProcessAlive(stack_.pageserver.pid) ||
      !LoopbackPortOpen(stack_.pageserver.port)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the Cambium stack in %s is not running; start it with `cambium up --data-dir %s`",
        dir_.path(), dir_.path()));
  }
  return absl::OkStatus();
}

absl::Status Cli::EnsureDaemons() {
  stack_.safekeepers.resize(kSafekeepers);
  for (int i = 0; i < kSafekeepers; ++i) {
    Daemon& sk = stack_.safekeepers[i];
    sk.name = absl::StrFormat("sk%d", i);
    absl::Status started =
        StartDaemon(sk, {CAMBIUM_SAFEKEEPER_BIN, "--data-dir", dir_.Sub(sk.name), "--id", sk.name},
                    dir_.Sub("logs/" + sk.name + ".log"));
    // Saved after every start, so `down` knows each daemon even when a later one fails.
    CAMBIUM_RETURN_IF_ERROR(dir_.SaveStack(stack_));
    CAMBIUM_RETURN_IF_ERROR(started);
  }
  stack_.pageserver.name = "pageserver";
  absl::Status started = StartDaemon(stack_.pageserver,
                                     {CAMBIUM_PAGESERVER_BIN, "--data-dir", dir_.Sub("pageserver"),
                                      "--safekeepers", SafekeeperAddresses()},
                                     dir_.Sub("logs/pageserver.log"));
  mgmt_.reset();
  CAMBIUM_RETURN_IF_ERROR(dir_.SaveStack(stack_));
  return started;
}

absl::Status Cli::EnsureMainBranch() {
  v1::ListTenantsResponse tenants;
  grpc::ClientContext ctx;
  CAMBIUM_RETURN_IF_ERROR(
      FromGrpcStatus(mgmt().ListTenants(&ctx, v1::ListTenantsRequest(), &tenants)));
  bool exists = false;
  for (const auto& t : tenants.tenants()) exists |= t.name() == stack_.tenant;
  if (!exists) {
    v1::CreateTenantRequest req;
    req.set_name(stack_.tenant);
    v1::TenantInfo info;
    grpc::ClientContext c;
    CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(mgmt().CreateTenant(&c, req, &info)));
  }
  if (GetBranch("main").ok()) return absl::OkStatus();
  // First run: a fresh cluster from the installed initdb becomes branch main.
  const std::string pgdata = dir_.Sub("initdb");
  std::error_code ec;
  fs::remove_all(pgdata, ec);
  SubprocessOptions initdb;
  initdb.argv = {std::string(CAMBIUM_PG_BINDIR) + "/initdb",
                 "-N",
                 "-D",
                 pgdata,
                 "-U",
                 "postgres",
                 "-E",
                 "UTF8",
                 "--locale=C",
                 "--auth=trust"};
  initdb.user = "postgres";
  fs::create_directories(pgdata);
  (void)CheckCommand({.argv = {"chown", "postgres:postgres", pgdata}});
  auto out = CheckCommand(initdb, absl::Minutes(5));
  if (!out.ok()) return Annotate(out.status(), "initdb");
  v1::ImportPgdataRequest imp;
  imp.set_tenant(stack_.tenant);
  imp.set_branch("main");
  imp.set_pgdata_path(pgdata);
  v1::BranchInfo main;
  grpc::ClientContext c;
  absl::Status imported = FromGrpcStatus(mgmt().ImportPgdata(&c, imp, &main));
  fs::remove_all(pgdata, ec);
  return imported;
}

absl::StatusOr<Output> Cli::Up() {
  CAMBIUM_RETURN_IF_ERROR(EnsureDaemons());
  CAMBIUM_RETURN_IF_ERROR(EnsureMainBranch());
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  bool have_main = false;
  for (EndpointState& ep : endpoints) {
    have_main |= ep.name == "main";
    if (EndpointRunning(ep)) continue;
    auto started = StartEndpoint(ep, /*takeover=*/true);
    if (!started.ok()) return Annotate(started.status(), "restarting endpoint " + ep.name);
    ep = *std::move(started);
  }
  if (!have_main) {
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
              {"pageserver", DaemonJson(stack_.pageserver)},
              {"endpoints", json::array()}};
  std::string main_conn;
  for (const EndpointState& ep : endpoints) {
    out.json["endpoints"].push_back(EndpointJson(ep));
    if (ep.name == "main") main_conn = ConnectionString(ep);
  }
  out.json["connection_string"] = main_conn;
  out.text =
      absl::StrFormat("Cambium is up (data in %s).\nBranch main: %s\nConnect with: psql %s\n",
                      dir_.path(), main_conn.empty() ? "(no endpoint)" : main_conn, main_conn);
  return out;
}

absl::StatusOr<Output> Cli::Down() {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  // Everything is stopped even if one piece fails; the first failure is reported.
  absl::Status first;
  for (EndpointState& ep : endpoints) {
    // A running endpoint has a live shim; a crashed one a shim pid to clean up.
    if (ep.shim_pid > 0) first.Update(StopEndpoint(ep, /*forget=*/false));
  }
  first.Update(StopProcess(stack_.pageserver.pid, SIGTERM, absl::Seconds(30)));
  for (Daemon& sk : stack_.safekeepers)
    first.Update(StopProcess(sk.pid, SIGTERM, absl::Seconds(30)));
  stack_.pageserver.pid = 0;
  for (Daemon& sk : stack_.safekeepers) sk.pid = 0;
  if (!stack_.safekeepers.empty()) first.Update(dir_.SaveStack(stack_));
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
  out.json["pageserver"] = DaemonJson(stack_.pageserver);
  out.json["safekeepers"] = json::array();
  for (const Daemon& sk : stack_.safekeepers) out.json["safekeepers"].push_back(DaemonJson(sk));
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  out.json["endpoints"] = json::array();
  for (const EndpointState& ep : endpoints) out.json["endpoints"].push_back(EndpointJson(ep));
  std::string text =
      absl::StrFormat("data directory: %s (tenant %s)\n", dir_.path(), stack_.tenant);
  auto line = [&](const json& d) {
    text += absl::StrFormat("  %-11s %-8s %-16s log %s\n", d["name"].get<std::string>(),
                            d["running"].get<bool>() ? "running" : "stopped",
                            d["address"].get<std::string>(), d["log"].get<std::string>());
  };
  line(out.json["pageserver"]);
  for (const auto& sk : out.json["safekeepers"]) line(sk);
  for (const auto& ep : out.json["endpoints"]) {
    text += absl::StrFormat("  endpoint %-20s %-8s %s\n", ep["name"].get<std::string>(),
                            ep["running"].get<bool>() ? "running" : "stopped",
                            ep["connection_string"].get<std::string>());
  }
  out.text = text;
  return out;
}

}  // namespace cambium::cli
