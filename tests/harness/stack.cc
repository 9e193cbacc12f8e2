#include "tests/harness/stack.h"

#include <signal.h>
#include <sys/mount.h>

#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "tests/harness/net.h"
#include "tests/harness/pg_cluster.h"
#include "tests/harness/security.h"

namespace cambium::testing {
namespace {

// With `enabled`, adds --http-listen on a free port to `args` and returns the address.
absl::StatusOr<std::string> AddHttpListen(bool enabled, std::vector<std::string>* args) {
  if (!enabled) return std::string();
  CAMBIUM_ASSIGN_OR_RETURN(int port, FreePort());
  const std::string address = absl::StrFormat("127.0.0.1:%d", port);
  args->insert(args->end(), {"--http-listen", address});
  return address;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestStack>> TestStack::Create(StackOptions options) {
  std::unique_ptr<TestStack> stack(new TestStack());
  stack->options_ = options;
  CAMBIUM_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("cambium-stack-"));
  stack->dir_ = std::make_unique<TempDir>(std::move(dir));
  for (int i = 0; i < options.safekeepers; ++i) {
    CAMBIUM_ASSIGN_OR_RETURN(int port, FreePort());
    const std::string name = absl::StrFormat("sk%d", i);
    std::vector<std::string> args = {"--data-dir", stack->dir_->Sub(name), "--id", name};
    CAMBIUM_ASSIGN_OR_RETURN(std::string http, AddHttpListen(options.http, &args));
    CAMBIUM_ASSIGN_OR_RETURN(auto sk, ServiceProcess::Start(CAMBIUM_SAFEKEEPER_BIN, args, port,
                                                            stack->dir_->Sub(name + ".log")));
    stack->safekeepers_.push_back(std::move(sk));
    stack->safekeeper_http_.push_back(http);
  }
  CAMBIUM_ASSIGN_OR_RETURN(int ps_port, FreePort());
  std::vector<std::string> ps_args = {"--data-dir",    stack->dir_->Sub("pageserver"),
                                      "--safekeepers", stack->safekeeper_addresses(),
                                      "--gc-interval", "0",
                                      "--cache-mb",    "64"};
  ps_args.insert(ps_args.end(), options.pageserver_args.begin(), options.pageserver_args.end());
  CAMBIUM_ASSIGN_OR_RETURN(stack->pageserver_http_, AddHttpListen(options.http, &ps_args));
  CAMBIUM_ASSIGN_OR_RETURN(stack->pageserver_,
                           ServiceProcess::Start(CAMBIUM_PAGESERVER_BIN, ps_args, ps_port,
                                                 stack->dir_->Sub("pageserver.log")));
  stack->mgmt_ = v1::ManagementService::NewStub(MakeChannel(stack->pageserver_->address()));
  // Tenant and branch main from a fresh initdb.
  CAMBIUM_ASSIGN_OR_RETURN(auto cluster, PgCluster::Create({.start = false}));
  v1::CreateTenantRequest tenant;
  tenant.set_name(options.tenant);
  v1::TenantInfo info;
  grpc::ClientContext ctx;
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(stack->mgmt_->CreateTenant(&ctx, tenant, &info)));
  v1::ImportPgdataRequest imp;
  imp.set_tenant(options.tenant);
  imp.set_branch("main");
  imp.set_pgdata_path(cluster->pgdata());
  v1::BranchInfo main;
  grpc::ClientContext ctx2;
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(stack->mgmt_->ImportPgdata(&ctx2, imp, &main)));
  return stack;
}

TestStack::~TestStack() = default;

std::string TestStack::safekeeper_addresses() const {
  std::vector<std::string> addrs;
  for (const auto& sk : safekeepers_) addrs.push_back(sk->address());
  return absl::StrJoin(addrs, ",");
}

absl::StatusOr<v1::BranchInfo> TestStack::GetBranch(const std::string& name) {
  v1::GetBranchRequest req;
  req.set_tenant(options_.tenant);
  req.set_name(name);
  v1::BranchInfo out;
  grpc::ClientContext ctx;
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(mgmt_->GetBranch(&ctx, req, &out)));
  return out;
}

absl::StatusOr<v1::BranchInfo> TestStack::CreateBranch(const std::string& name,
                                                       const std::string& parent,
                                                       std::optional<Lsn> lsn,
                                                       std::optional<absl::Time> at) {
  v1::CreateBranchRequest req;
  req.set_tenant(options_.tenant);
  req.set_name(name);
  req.set_parent(parent);
  if (lsn) req.set_lsn(lsn->value());
  if (at) req.set_at_unix_micros(absl::ToUnixMicros(*at));
  v1::BranchInfo out;
  grpc::ClientContext ctx;
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(mgmt_->CreateBranch(&ctx, req, &out)));
  return out;
}

absl::Status TestStack::WaitForArchive(const std::string& branch, Lsn lsn, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(branch));
    if (Lsn(b.last_record_lsn()) >= lsn) return absl::OkStatus();
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("branch %s archived up to %s, waited for %s", branch,
                          Lsn(b.last_record_lsn()).ToString(), lsn.ToString()));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<std::unique_ptr<Endpoint>> TestStack::StartEndpoint(const std::string& branch,
                                                                   EndpointOptions options) {
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(branch));
  std::unique_ptr<Endpoint> ep(new Endpoint());
  ep->branch_ = branch;
  ep->options_ = options;
  ep->dir_ = dir_->Sub(absl::StrFormat("endpoint%d-%s", ++endpoints_, branch));
  ep->mountpoint_ = ep->dir_ + "/pgdata";
  // The shim's scratch is root's, outside the directory the postgres user owns
  // (docs/security.md).
  ep->scratch_ = ep->dir_ + "-scratch";
  std::filesystem::create_directories(ep->mountpoint_);
  std::filesystem::create_directories(ep->scratch_);
  CAMBIUM_RETURN_IF_ERROR(ChownToUser(ep->dir_, "postgres"));
  ep->shim_binary_ = CAMBIUM_SHIM_BIN;
  ep->shim_args_ = {"--pageserver",  pageserver_->address(),
                    "--safekeepers", safekeeper_addresses(),
                    "--tenant",      IdHex(b.tenant_id()),
                    "--timeline",    IdHex(b.timeline_id()),
                    "--mountpoint",  ep->mountpoint_,
                    "--scratch",     ep->scratch_,
                    "--endpoint",    absl::StrFormat("%s-endpoint%d", branch, endpoints_),
                    "--cache-mb",    std::to_string(options.cache_mb),
                    "--ready-file",  ep->dir_ + "/ready",
                    "--log-file",    ep->dir_ + "/shim.log"};
  CAMBIUM_ASSIGN_OR_RETURN(ep->http_address_, AddHttpListen(options.http, &ep->shim_args_));
  CAMBIUM_RETURN_IF_ERROR(ep->StartShim(options.takeover));
  CAMBIUM_ASSIGN_OR_RETURN(int port, FreePort());
  std::map<std::string, std::string> settings = {
      {"checkpoint_timeout", "30s"},
      {"max_wal_size", "256MB"},
      {"shared_buffers", "64MB"},
      {"wal_writer_delay", "10ms"},
      {"recovery_prefetch", "off"}};  // as the CLI runs it (tools/cli_endpoint.cc)
  for (const auto& [k, v] : options.settings) settings[k] = v;
  // Pinned as the CLI pins them (issue 9): the command line beats ALTER SYSTEM.
  settings["full_page_writes"] = "on";
  settings["fsync"] = "on";
  settings["wal_sync_method"] = "fdatasync";
  ep->pg_ =
      std::make_unique<PostgresProcess>(PostgresOptions{.pgdata = ep->mountpoint_,
                                                        .port = port,
                                                        .socket_dir = ep->dir_,
                                                        .log_file = ep->dir_ + "/postgres.log",
                                                        .settings = settings});
  absl::Status started = ep->pg_->Start();
  if (!started.ok()) {
    return absl::Status(started.code(),
                        absl::StrFormat("%s\nshim log:\n%s", started.message(), ep->ShimLogTail()));
  }
  return ep;
}

absl::Status Endpoint::StartShim(bool takeover) {
  std::filesystem::remove(dir_ + "/ready");
  SubprocessOptions opts;
  opts.argv = {shim_binary_, "--service-token-file", TestServiceTokenFile()};
  opts.argv.insert(opts.argv.end(), shim_args_.begin(), shim_args_.end());
  if (takeover) opts.argv.push_back("--takeover");
  opts.stdout_file = dir_ + "/shim.out";
  opts.stderr_file = dir_ + "/shim.out";
  opts.die_with_parent = true;
  CAMBIUM_ASSIGN_OR_RETURN(shim_, Subprocess::Start(opts));
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    if (std::filesystem::exists(dir_ + "/ready")) {
      CAMBIUM_ASSIGN_OR_RETURN(const std::string ready, ReadFileToString(dir_ + "/ready"));
      CAMBIUM_ASSIGN_OR_RETURN(start_lsn_, Lsn::Parse(ready.substr(0, ready.find('\n'))));
      return absl::OkStatus();
    }
    if (!shim_->running()) {
      return absl::InternalError(absl::StrFormat("cambium-shim exited during startup:\n%s%s",
                                                 FileTail(dir_ + "/shim.out", 4000),
                                                 ShimLogTail()));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("cambium-shim did not mount within 60 s:\n" + ShimLogTail());
}

std::string Endpoint::ShimLogTail(size_t bytes) const {
  return FileTail(dir_ + "/shim.log", bytes);
}

void Endpoint::Unmount() {
  // A dead shim leaves a mount whose every access fails ("transport endpoint is not
  // connected"); a lazy unmount clears it.
  umount2(mountpoint_.c_str(), MNT_DETACH);
}

absl::Status Endpoint::Stop() {
  absl::Status pg = pg_ ? pg_->Stop() : absl::OkStatus();
  absl::Status shim;
  if (shim_ && shim_->running()) {
    auto code = shim_->Stop(SIGTERM, absl::Seconds(60));
    if (!code.ok()) {
      shim = code.status();
    } else if (*code != 0) {
      shim = absl::InternalError(
          absl::StrFormat("cambium-shim exited with %d:\n%s", *code, ShimLogTail()));
    }
  }
  shim_.reset();
  Unmount();
  return pg.ok() ? shim : pg;
}

absl::Status Endpoint::CrashPostgres() { return pg_->Crash(); }

absl::Status Endpoint::KillShim() {
  if (!shim_) return absl::FailedPreconditionError("no shim");
  auto code = shim_->Stop(SIGKILL, absl::Seconds(10));
  shim_.reset();
  // Postgres cannot continue on a dead mount; take it down like the OS would.
  if (pg_->running()) (void)pg_->Crash();
  return code.status();
}

absl::Status Endpoint::Restart() {
  if (pg_->running()) (void)pg_->Crash();
  if (shim_) {
    (void)shim_->Stop(SIGTERM, absl::Seconds(30));
    shim_.reset();
  }
  Unmount();
  CAMBIUM_RETURN_IF_ERROR(StartShim(/*takeover=*/true));
  absl::Status started = pg_->Start();
  if (!started.ok()) {
    return absl::Status(started.code(),
                        absl::StrFormat("%s\nshim log:\n%s", started.message(), ShimLogTail()));
  }
  return absl::OkStatus();
}

Endpoint::~Endpoint() { (void)Stop(); }

}  // namespace cambium::testing
