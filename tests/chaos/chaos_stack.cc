#include "tests/chaos/chaos_stack.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "auth/private_file.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "common/lsn.h"
#include "common/service.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "tests/harness/temp_dir.h"

namespace cambium::chaos {
namespace {

// A channel to the stack's pageserver that calls with the stack's admin token
// (DATA/secrets/admin.token, written by `cambium up`).
absl::StatusOr<std::shared_ptr<grpc::Channel>> AdminChannel(const std::string& data_dir, int port) {
  CAMBIUM_ASSIGN_OR_RETURN(std::string token,
                           auth::ReadSecretFile(data_dir + "/secrets/admin.token"));
  ProcessSecurity security = GetProcessSecurity();
  security.client_token = token;
  SetProcessSecurity(std::move(security));
  return MakeChannel(absl::StrFormat("127.0.0.1:%d", port));
}

namespace fs = std::filesystem;
using nlohmann::json;

template <typename T>
T Field(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    return fallback;
  }
}

DaemonInfo ParseDaemon(const json& j) {
  DaemonInfo d;
  d.name = Field<std::string>(j, "name", "");
  d.pid = Field<int>(j, "pid", 0);
  d.running = Field<bool>(j, "running", false);
  d.log = Field<std::string>(j, "log", "");
  const std::string address = Field<std::string>(j, "address", "");
  const size_t colon = address.rfind(':');
  if (colon != std::string::npos) d.port = std::atoi(address.c_str() + colon + 1);
  return d;
}

EndpointInfo ParseEndpoint(const json& j) {
  EndpointInfo e;
  e.name = Field<std::string>(j, "name", "");
  e.postgres_pid = Field<int>(j, "pid", 0);
  e.shim_pid = Field<int>(j, "shim_pid", 0);
  e.port = Field<int>(j, "port", 0);
  e.running = Field<bool>(j, "running", false);
  // The suite needs the superuser (pg_switch_wal, CREATE EXTENSION amcheck): the
  // peer socket, not the owner's TCP credentials (docs/security.md).
  e.connection_string = Field<std::string>(j, "maintenance_connection_string", "");
  e.postgres_log = Field<std::string>(j, "postgres_log", "");
  e.shim_log = Field<std::string>(j, "shim_log", "");
  return e;
}

}  // namespace

std::string CliResult::Describe() const {
  std::string e = err;
  while (!e.empty() && e.back() == '\n') e.pop_back();
  return absl::StrFormat("exit %d: %s", code, e);
}

const EndpointInfo* StackStatus::endpoint(const std::string& name) const {
  for (const EndpointInfo& e : endpoints) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

void SignalProcess(pid_t pid, int sig) {
  if (pid <= 0) return;
  if (kill(-pid, sig) != 0) kill(pid, sig);
}

bool ProcessLive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

std::vector<pid_t> ChildProcesses(pid_t pid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid && state != 'Z') out.push_back(std::atoi(name.c_str()));
  }
  return out;
}

std::string ProcessTitle(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(s.begin(), s.end(), '\0', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

absl::StatusOr<std::unique_ptr<ChaosStack>> ChaosStack::Create(ChaosStackOptions options) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrFormat("%s/cambium-chaos-XXXXXX", tmp && *tmp ? tmp : std::string("/tmp"));
  if (mkdtemp(pattern.data()) == nullptr) return ErrnoToStatus(errno, "mkdtemp " + pattern);
  std::unique_ptr<ChaosStack> stack(new ChaosStack(std::move(options), pattern));
  CAMBIUM_RETURN_IF_ERROR(stack->MountAndGuard());
  CAMBIUM_RETURN_IF_ERROR(stack->MoveToChaosTenant());
  return stack;
}

absl::Status ChaosStack::MountAndGuard() {
  // The guard first: from here on, a crash of this process still cleans up.
  CAMBIUM_ASSIGN_OR_RETURN(testing::ExitGuard guard,
                           testing::ExitGuard::Start(absl::StrFormat("%s %s", CAMBIUM_CHAOS_CLEANUP,
                                                                     testing::ShellQuote(root_))));
  guard_ = std::make_unique<testing::ExitGuard>(std::move(guard));
  fs::create_directories(data_dir());
  const std::string opts = absl::StrFormat("size=%u,mode=0755", options_.tmpfs_bytes);
  if (mount("tmpfs", data_dir().c_str(), "tmpfs", 0, opts.c_str()) != 0) {
    return ErrnoToStatus(errno, "mount tmpfs on " + data_dir() + " (the chaos suite runs as root)");
  }
  chmod(root_.c_str(), 0755);
  return absl::OkStatus();
}

absl::Status ChaosStack::MoveToChaosTenant() {
  // `cambium up` creates its tenant with the server's default PITR window (7 days),
  // which leaves GC nothing to do within a test. So: bring the stack up, create the
  // chaos tenant with a short window, retire the default tenant's endpoint and
  // bring main up again in the chaos tenant.
  auto up = RunCommand({.argv = {CAMBIUM_CLI_BIN, "up", "--json", "--data-dir", data_dir()}},
                       absl::Minutes(4));
  if (!up.ok()) return up.status();
  if (up->exit_code != 0) return absl::InternalError("cambium up: " + up->err);
  CAMBIUM_ASSIGN_OR_RETURN(StackStatus st, Status());
  CAMBIUM_ASSIGN_OR_RETURN(auto channel, AdminChannel(data_dir(), st.pageserver.port));
  auto stub = v1::ManagementService::NewStub(channel);
  v1::CreateTenantRequest req;
  req.set_name(options_.tenant);
  req.set_pitr_window_seconds(
      static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Seconds(options_.pitr_window))));
  v1::TenantInfo info;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(stub->CreateTenant(&ctx, req, &info)));
  auto stop = RunCommand(
      {.argv = {CAMBIUM_CLI_BIN, "endpoint", "stop", "main", "--json", "--data-dir", data_dir()}},
      absl::Minutes(4));
  if (!stop.ok() || stop->exit_code != 0) {
    return absl::InternalError("endpoint stop main (default tenant): " +
                               (stop.ok() ? stop->err : stop.status().ToString()));
  }
  return Up();
}

ChaosStack::~ChaosStack() { Destroy(); }

void ChaosStack::Destroy() {
  if (destroyed_) return;
  destroyed_ = true;
  (void)RunCommand({.argv = {CAMBIUM_CHAOS_CLEANUP, root_}}, absl::Minutes(5));
  guard_.reset();
}

CliResult ChaosStack::Cambium(std::vector<std::string> args, absl::Duration timeout) {
  std::vector<std::string> argv = {CAMBIUM_CLI_BIN, "--json",   "--data-dir",
                                   data_dir(),      "--tenant", options_.tenant};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult res;
  auto r = RunCommand({.argv = argv}, timeout);
  if (!r.ok()) {
    res.err = std::string(r.status().message());
    return res;
  }
  res.code = r->exit_code;
  res.err = r->err;
  res.out = json::parse(r->out, nullptr, false);
  return res;
}

absl::StatusOr<StackStatus> ChaosStack::Status() {
  CliResult r = Cambium({"status"}, absl::Minutes(1));
  if (!r.ok() || !r.out.is_object()) return absl::UnavailableError("status: " + r.Describe());
  StackStatus st;
  if (r.out.contains("supervisor") && Field<bool>(r.out["supervisor"], "running", false)) {
    st.supervisor_pid = Field<int>(r.out["supervisor"], "pid", 0);
  }
  st.pageserver = ParseDaemon(r.out["pageserver"]);
  for (const json& sk : r.out["safekeepers"]) st.safekeepers.push_back(ParseDaemon(sk));
  for (const json& ep : r.out["endpoints"]) st.endpoints.push_back(ParseEndpoint(ep));
  return st;
}

absl::Status ChaosStack::Up() {
  CliResult r = Cambium({"up"});
  if (!r.ok()) return absl::UnavailableError("cambium up: " + r.Describe());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChaosStack::StartEndpoint(const std::string& branch,
                                                      absl::Duration timeout) {
  CliResult r = Cambium({"endpoint", "start", branch}, timeout);
  if (!r.ok()) return absl::UnavailableError("endpoint start " + branch + ": " + r.Describe());
  return Field<std::string>(r.out, "maintenance_connection_string", "");
}

absl::Status ChaosStack::StopEndpoint(const std::string& branch) {
  CliResult r = Cambium({"endpoint", "stop", branch});
  if (!r.ok()) return absl::UnavailableError("endpoint stop " + branch + ": " + r.Describe());
  return absl::OkStatus();
}

absl::StatusOr<std::string> ChaosStack::ConnectionString(const std::string& branch) {
  CAMBIUM_ASSIGN_OR_RETURN(StackStatus st, Status());
  const EndpointInfo* ep = st.endpoint(branch);
  if (ep == nullptr) return absl::NotFoundError("no endpoint on " + branch);
  return ep->connection_string;
}

absl::StatusOr<json> ChaosStack::Branch(const std::string& name) {
  CliResult r = Cambium({"branch", "list"}, absl::Minutes(1));
  if (!r.ok() || !r.out.is_array()) return absl::UnavailableError("branch list: " + r.Describe());
  for (const json& b : r.out) {
    if (Field<std::string>(b, "name", "") == name) return b;
  }
  return absl::NotFoundError("no branch " + name);
}

absl::StatusOr<ChaosStack::GcResult> ChaosStack::RunGc() {
  CAMBIUM_ASSIGN_OR_RETURN(StackStatus st, Status());
  CAMBIUM_ASSIGN_OR_RETURN(auto channel, AdminChannel(data_dir(), st.pageserver.port));
  auto stub = v1::ManagementService::NewStub(channel);
  v1::RunGcRequest req;
  req.set_tenant(options_.tenant);
  v1::RunGcResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(2));
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus(stub->RunGc(&ctx, req, &resp)));
  return GcResult{resp.versions_removed(), Lsn(resp.cutoff_lsn()).ToString()};
}

absl::StatusOr<uint64_t> ChaosStack::FreeBytes() const {
  struct statvfs sv;
  if (statvfs(data_dir().c_str(), &sv) != 0) return ErrnoToStatus(errno, "statvfs");
  return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
}

absl::Status ChaosStack::FillDisk() {
  // Write (not fallocate): tmpfs accounts written pages exactly, and the last
  // partial megabyte is filled byte by byte until ENOSPC.
  FILE* f = std::fopen(ballast_path().c_str(), "ab");
  if (f == nullptr) return ErrnoToStatus(errno, "open " + ballast_path());
  std::setvbuf(f, nullptr, _IONBF, 0);
  const std::string chunk(1 << 20, 'B');
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
  }
  std::clearerr(f);
  while (std::fwrite("B", 1, 1, f) == 1) {
  }
  std::fclose(f);
  return absl::OkStatus();
}

void ChaosStack::FreeBallast() {
  std::error_code ec;
  fs::remove(ballast_path(), ec);
}

}  // namespace cambium::chaos
