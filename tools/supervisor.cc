#include "tools/supervisor.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/net.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "metrics/process_metrics.h"
#include "nlohmann/json.hpp"
#include "tools/cli_state.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

json TimeJson(absl::Time t) {
  return t == absl::InfinitePast() ? json(nullptr) : json(absl::ToUnixMicros(t));
}

absl::Time TimeFrom(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number_integer()) return absl::InfinitePast();
  return absl::FromUnixMicros(j[key].get<int64_t>());
}

// One daemon under supervision: its record plus what only the running supervisor
// needs.
struct Supervised {
  Daemon spec;
  DaemonRecord record;
  bool child = false;  // started by this supervisor: waitpid gives its exit status
  // It came up: its port accepted a connection during this run. Its next exit is a
  // new crash, restarted after initial_backoff, not one more failed start.
  bool ready = false;
  // Something else listened on the port when this run started (the daemon will
  // fail to bind): an open port then says nothing about the daemon.
  bool port_taken = false;
  absl::Time running_since = absl::InfinitePast();
  absl::Duration backoff;
};

// One endpoint under watch. `record` is what supervisor.json shows; the rest only
// the running supervisor needs.
struct WatchedEndpoint {
  EndpointRecord record;
  pid_t recovering = 0;  // the running `cambium endpoint recover NAME`, if any
  bool crashed = false;  // seen crashed, not yet started again
  std::string exit;      // what was seen dead ("postgres exited", ...)
  absl::Time noticed = absl::InfinitePast();
  absl::Time next_start = absl::InfinitePast();
  absl::Time healthy_since = absl::InfinitePast();
  absl::Duration backoff;
};

class Supervisor {
 public:
  Supervisor(std::string data_dir, const SupervisorOptions& options)
      : data_dir_(std::move(data_dir)), options_(options) {}

  absl::Status Run();

 private:
  absl::Status Load();
  // Reaps children and polls adopted daemons; true if any exited.
  bool CollectExits();
  void Exited(Supervised& d, const std::string& how);
  // Starts every daemon whose restart is due; true if any started.
  bool StartDue();
  // `restarts`: the daemon's restarts including this start (its environment says so).
  absl::Status Start(Supervised& d, int restarts);
  // Reaps finished `endpoint recover` children, notices crashed endpoints and starts
  // the restarts that are due; true if anything changed.
  bool WatchEndpoints();
  void RecoverFinished(WatchedEndpoint& w, int status);
  void StartRecover(WatchedEndpoint& w);
  std::string RecoverOutput(const std::string& name) const {
    return data_dir_ + "/logs/recover-" + name + ".json";
  }
  absl::Status Save();

  const std::string data_dir_;
  const SupervisorOptions options_;
  SupervisorState state_;
  std::vector<Supervised> daemons_;
  std::map<std::string, WatchedEndpoint> endpoints_;
  absl::Time next_endpoint_check_ = absl::InfinitePast();
};

absl::Status Supervisor::Load() {
  CAMBIUM_ASSIGN_OR_RETURN(StackState stack, LoadStackFile(data_dir_ + "/stack.json"));
  absl::StatusOr<SupervisorState> previous = LoadSupervisorState(data_dir_);
  state_.pid = getpid();
  state_.started = absl::Now();
  // Safekeepers first: the pageservers follow them from their start.
  for (const Daemon* daemon : stack.Daemons()) {
    const Daemon& spec = *daemon;
    if (spec.argv.empty()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "stack.json has no command line for %s; run `cambium up` to write one", spec.name));
    }
    Supervised d{.spec = spec, .backoff = options_.initial_backoff};
    d.record.name = spec.name;
    d.record.port = spec.port;
    if (previous.ok()) {
      // Restart history survives a replaced supervisor and down/up.
      for (const DaemonRecord& r : previous->daemons) {
        if (r.name == spec.name) d.record = r;
      }
    }
    d.record.port = spec.port;
    // `up` wrote the pid of a daemon it found running (0 otherwise): adopt it, if
    // that pid still runs this command line.
    d.record.pid = ProcessHasArgs(spec.pid, spec.argv) ? spec.pid : 0;
    d.record.next_start = absl::InfinitePast();
    if (d.record.pid > 0) {
      d.running_since = absl::Now();
      LogInfo("daemon_adopted", {{"name", spec.name}, {"pid", d.record.pid}, {"port", spec.port}});
    }
    daemons_.push_back(std::move(d));
  }
  for (const Supervised& d : daemons_) state_.daemons.push_back(d.record);
  if (previous.ok()) {
    for (const EndpointRecord& r : previous->endpoints) {
      endpoints_[r.name] = WatchedEndpoint{.record = r, .backoff = options_.initial_backoff};
    }
  }
  return absl::OkStatus();
}

void Supervisor::Exited(Supervised& d, const std::string& how) {
  const absl::Time now = absl::Now();
  const absl::Duration ran = now - d.running_since;
  if (d.ready || ran >= options_.stable_after) d.backoff = options_.initial_backoff;
  LogWarning("daemon_exited", {{"name", d.spec.name},
                               {"pid", d.record.pid},
                               {"exit", how},
                               {"ran_ms", absl::ToInt64Milliseconds(ran)},
                               {"restart_in_ms", absl::ToInt64Milliseconds(d.backoff)}});
  d.record.pid = 0;
  d.record.last_exit = how;
  d.record.last_exit_time = now;
  d.record.next_start = now + d.backoff;
  d.backoff = std::min(d.backoff * 2, options_.max_backoff);
  d.child = false;
  d.ready = false;
}

bool Supervisor::CollectExits() {
  bool any = false;
  for (Supervised& d : daemons_) {
    if (d.record.pid <= 0) continue;
    if (!d.ready && !d.port_taken && d.spec.port > 0 && LoopbackPortOpen(d.spec.port)) {
      d.ready = true;
      LogInfo("daemon_ready",
              {{"name", d.spec.name},
               {"pid", d.record.pid},
               {"after_ms", absl::ToInt64Milliseconds(absl::Now() - d.running_since)}});
    }
    if (d.child) {
      int status = 0;
      const pid_t r = waitpid(d.record.pid, &status, WNOHANG);
      if (r == d.record.pid) {
        Exited(d, DescribeWaitStatus(status));
        any = true;
      }
    } else if (!ProcessAlive(d.record.pid)) {
      Exited(d, "unknown (adopted, not a child of this supervisor)");
      any = true;
    }
  }
  return any;
}

absl::Status Supervisor::Start(Supervised& d, int restarts) {
  d.port_taken = d.spec.port > 0 && LoopbackPortOpen(d.spec.port);
  SubprocessOptions options;
  options.argv = d.spec.argv;
  // The daemon reports it as cambium_supervisor_restarts (metrics/process_metrics.h).
  options.env[metrics::kRestartsEnv] = std::to_string(restarts);
  options.stdout_file = d.spec.log + ".out";
  options.stderr_file = d.spec.log + ".out";
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<Subprocess> process, Subprocess::Start(options));
  // Still our child after Release: waitpid reports its exit.
  d.record.pid = static_cast<int>(process->Release());
  d.child = true;
  d.running_since = absl::Now();
  return absl::OkStatus();
}

bool Supervisor::StartDue() {
  bool any = false;
  const absl::Time now = absl::Now();
  for (Supervised& d : daemons_) {
    if (d.record.pid > 0 || d.record.next_start > now) continue;
    // A first start (nothing ran yet under this supervisor) is not a restart.
    const bool restart = d.record.last_exit_time > state_.started;
    absl::Status started = Start(d, d.record.restarts + (restart ? 1 : 0));
    any = true;
    if (!started.ok()) {
      // Cannot even fork/exec: try again after the backoff, like a crash.
      Exited(d, std::string(started.message()));
      continue;
    }
    if (restart) {
      ++d.record.restarts;
      d.record.last_restart = now;
    }
    LogInfo(restart ? "daemon_restarted" : "daemon_started", {{"name", d.spec.name},
                                                              {"pid", d.record.pid},
                                                              {"port", d.spec.port},
                                                              {"restarts", d.record.restarts}});
  }
  return any;
}

void Supervisor::StartRecover(WatchedEndpoint& w) {
  const std::string& name = w.record.name;
  std::error_code ec;
  std::filesystem::create_directories(data_dir_ + "/logs", ec);
  absl::StatusOr<std::string> self = SelfExe();
  SubprocessOptions options;
  options.argv = {self.ok() ? *self : "", "endpoint", "recover", "--json",
                  "--data-dir",           data_dir_,  name};
  // The stack's own admin token (DATA/secrets), never a token `up` ran with.
  options.env["CAMBIUM_TOKEN"] = "";
  // Subprocess appends: this run's answer alone.
  std::filesystem::remove(RecoverOutput(name), ec);
  std::filesystem::remove(RecoverOutput(name) + ".err", ec);
  options.stdout_file = RecoverOutput(name);
  options.stderr_file = RecoverOutput(name) + ".err";
  absl::StatusOr<std::unique_ptr<Subprocess>> started =
      self.ok() ? Subprocess::Start(options)
                : absl::StatusOr<std::unique_ptr<Subprocess>>(self.status());
  if (!started.ok()) {
    w.record.last_error = std::string(started.status().message());
    w.next_start = absl::Now() + w.backoff;
    w.backoff = std::min(w.backoff * 2, options_.max_backoff);
    LogError("endpoint_recover_not_started", {{"name", name}, {"status", started.status()}});
    return;
  }
  w.recovering = static_cast<pid_t>((*started)->Release());
  LogInfo("endpoint_recovering", {{"name", name}, {"exit", w.exit}, {"pid", w.recovering}});
}

void Supervisor::RecoverFinished(WatchedEndpoint& w, int status) {
  const std::string& name = w.record.name;
  w.recovering = 0;
  const absl::Time now = absl::Now();
  absl::StatusOr<std::string> out = ReadFileToString(RecoverOutput(name));
  const json result = json::parse(out.ok() ? *out : "", nullptr, /*allow_exceptions=*/false);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    const bool restarted = result.is_object() && result.value("restarted", false);
    w.crashed = false;
    if (!restarted) {
      // `endpoint stop`, `down` or a start by hand came first: nothing was needed.
      LogInfo("endpoint_recover_not_needed",
              {{"name", name}, {"reason", result.is_object() ? result.value("reason", "") : ""}});
      return;
    }
    ++w.record.restarts;
    w.record.last_restart = now;
    w.record.last_exit = w.exit;
    w.record.last_exit_time = w.noticed;
    w.record.last_error.clear();
    w.healthy_since = now;
    LogInfo("endpoint_restarted", {{"name", name},
                                   {"exit", w.exit},
                                   {"restarts", w.record.restarts},
                                   {"postgres_pid", result.value("pid", 0)}});
    return;
  }
  absl::StatusOr<std::string> err = ReadFileToString(RecoverOutput(name) + ".err");
  // Its last line is the error (progress events come before it): with --json, an
  // {"error": {"message"}} object.
  std::string why = err.ok() ? *err : DescribeWaitStatus(status);
  while (!why.empty() && why.back() == '\n') why.pop_back();
  if (const size_t nl = why.rfind('\n'); nl != std::string::npos) why = why.substr(nl + 1);
  if (const json e = json::parse(why, nullptr, /*allow_exceptions=*/false);
      e.is_object() && e.contains("error") && e["error"].is_object()) {
    why = e["error"].value("message", why);
  }
  if (why.size() > 2000) why = why.substr(0, 2000) + "...";
  w.record.last_error = why.empty() ? DescribeWaitStatus(status) : why;
  w.next_start = now + w.backoff;
  LogWarning("endpoint_restart_failed", {{"name", name},
                                         {"exit", DescribeWaitStatus(status)},
                                         {"error", w.record.last_error},
                                         {"retry_in_ms", absl::ToInt64Milliseconds(w.backoff)}});
  w.backoff = std::min(w.backoff * 2, options_.max_backoff);
}

bool Supervisor::WatchEndpoints() {
  bool changed = false;
  for (auto& [name, w] : endpoints_) {
    int status = 0;
    if (w.recovering > 0 && waitpid(w.recovering, &status, WNOHANG) == w.recovering) {
      RecoverFinished(w, status);
      changed = true;
    }
  }
  const absl::Time now = absl::Now();
  if (now < next_endpoint_check_) return changed;
  next_endpoint_check_ = now + options_.endpoint_poll_interval;
  absl::StatusOr<std::vector<EndpointState>> endpoints = LoadEndpointFiles(data_dir_);
  if (!endpoints.ok()) {
    LogError("endpoints_not_read", {{"status", endpoints.status()}});
    return changed;
  }
  for (const EndpointState& ep : *endpoints) {
    WatchedEndpoint& w = endpoints_[ep.name];
    if (w.record.name.empty()) {
      w.record.name = ep.name;
      w.backoff = options_.initial_backoff;
    }
    if (w.recovering > 0) continue;
    if (!EndpointCrashed(ep)) {
      if (w.healthy_since == absl::InfinitePast()) w.healthy_since = now;
      w.crashed = false;
      continue;
    }
    if (!w.crashed) {
      w.crashed = true;
      w.noticed = now;
      w.exit = ep.restart_pending           ? "an earlier restart failed"
               : !ProcessAlive(ep.shim_pid) ? "shim exited"
                                            : "postgres exited";
      // Up for a while since its last restart: a new crash, not a crash loop.
      if (now - w.healthy_since >= options_.stable_after) w.backoff = options_.initial_backoff;
      w.next_start = now + w.backoff;
      w.healthy_since = absl::InfinitePast();
      LogWarning("endpoint_exited", {{"name", ep.name},
                                     {"exit", w.exit},
                                     {"postgres_pid", ep.postgres_pid},
                                     {"shim_pid", ep.shim_pid},
                                     {"restart_in_ms", absl::ToInt64Milliseconds(w.backoff)}});
    }
    if (now >= w.next_start) {
      StartRecover(w);
      changed = true;
    }
  }
  // Endpoints that are gone (stopped for good) keep their record only if they
  // were ever restarted; nothing else is worth a line in supervisor.json.
  for (auto it = endpoints_.begin(); it != endpoints_.end();) {
    const bool listed = std::any_of(endpoints->begin(), endpoints->end(),
                                    [&](const EndpointState& e) { return e.name == it->first; });
    if (!listed && it->second.recovering == 0 && it->second.record.restarts == 0) {
      it = endpoints_.erase(it);
    } else {
      ++it;
    }
  }
  return changed;
}

absl::Status Supervisor::Save() {
  for (size_t i = 0; i < daemons_.size(); ++i) state_.daemons[i] = daemons_[i].record;
  state_.endpoints.clear();
  for (const auto& [name, w] : endpoints_) {
    if (w.record.restarts > 0 || w.crashed || !w.record.last_error.empty()) {
      state_.endpoints.push_back(w.record);
    }
  }
  return SaveSupervisorState(data_dir_, state_);
}

absl::Status Supervisor::Run() {
  CAMBIUM_RETURN_IF_ERROR(Load());
  // Written before any start, so `up` sees this supervisor, and after every change,
  // so that a pid is recorded before anything else can happen to it.
  CAMBIUM_RETURN_IF_ERROR(Save());
  LogInfo("supervisor_started", {{"pid", state_.pid}, {"data_dir", data_dir_}});
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
  const int64_t tick_ns = absl::ToInt64Nanoseconds(options_.poll_interval);
  const timespec tick{.tv_sec = static_cast<time_t>(tick_ns / 1000000000),
                      .tv_nsec = static_cast<long>(tick_ns % 1000000000)};
  for (;;) {
    bool changed = CollectExits();
    changed |= StartDue();
    changed |= WatchEndpoints();
    if (changed) {
      absl::Status saved = Save();
      if (!saved.ok()) LogError("supervisor_state_not_saved", {{"status", saved}});
    }
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      LogInfo("supervisor_stopping", {{"signal", sig}});
      break;
    }
    if (!std::filesystem::exists(data_dir_ + "/stack.json")) {
      LogWarning("supervisor_stack_gone", {{"data_dir", data_dir_}});
      break;
    }
  }
  // The daemons keep running: `cambium down` stops them, or a new supervisor adopts
  // them. The final pids are left for `down` to find.
  (void)CollectExits();
  state_.pid = 0;
  return Save();
}

}  // namespace

std::string SupervisorStatePath(const std::string& data_dir) {
  return data_dir + "/supervisor.json";
}

absl::StatusOr<SupervisorState> LoadSupervisorState(const std::string& data_dir) {
  CAMBIUM_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(SupervisorStatePath(data_dir)));
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrFormat("%s is not valid JSON; remove it to start over",
                                               SupervisorStatePath(data_dir)));
  }
  SupervisorState s;
  s.pid = j.value("pid", 0);
  s.started = TimeFrom(j, "started_unix_micros");
  if (j.contains("daemons") && j["daemons"].is_array()) {
    for (const json& d : j["daemons"]) {
      DaemonRecord r;
      r.name = d.value("name", "");
      r.pid = d.value("pid", 0);
      r.port = d.value("port", 0);
      r.restarts = d.value("restarts", 0);
      r.last_restart = TimeFrom(d, "last_restart_unix_micros");
      r.last_exit = d.value("last_exit", "");
      r.last_exit_time = TimeFrom(d, "last_exit_unix_micros");
      r.next_start = TimeFrom(d, "next_start_unix_micros");
      s.daemons.push_back(std::move(r));
    }
  }
  if (j.contains("endpoints") && j["endpoints"].is_array()) {
    for (const json& e : j["endpoints"]) {
      EndpointRecord r;
      r.name = e.value("name", "");
      r.restarts = e.value("restarts", 0);
      r.last_restart = TimeFrom(e, "last_restart_unix_micros");
      r.last_exit = e.value("last_exit", "");
      r.last_exit_time = TimeFrom(e, "last_exit_unix_micros");
      r.last_error = e.value("last_error", "");
      if (!r.name.empty()) s.endpoints.push_back(std::move(r));
    }
  }
  return s;
}

absl::Status SaveSupervisorState(const std::string& data_dir, const SupervisorState& state) {
  json j = {{"version", 1},
            {"pid", state.pid},
            {"started_unix_micros", TimeJson(state.started)},
            {"daemons", json::array()}};
  for (const DaemonRecord& r : state.daemons) {
    j["daemons"].push_back({{"name", r.name},
                            {"pid", r.pid},
                            {"port", r.port},
                            {"restarts", r.restarts},
                            {"last_restart_unix_micros", TimeJson(r.last_restart)},
                            {"last_exit", r.last_exit},
                            {"last_exit_unix_micros", TimeJson(r.last_exit_time)},
                            {"next_start_unix_micros", TimeJson(r.next_start)}});
  }
  j["endpoints"] = json::array();
  for (const EndpointRecord& r : state.endpoints) {
    j["endpoints"].push_back({{"name", r.name},
                              {"restarts", r.restarts},
                              {"last_restart_unix_micros", TimeJson(r.last_restart)},
                              {"last_exit", r.last_exit},
                              {"last_exit_unix_micros", TimeJson(r.last_exit_time)},
                              {"last_error", r.last_error}});
  }
  return WriteFileAtomically(SupervisorStatePath(data_dir), j.dump(2) + "\n");
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrFormat("exit code %d", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* abbrev = sigabbrev_np(sig);
    return absl::StrFormat("signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
                           WCOREDUMP(status) ? ", core dumped" : "");
  }
  return absl::StrFormat("wait status %d", status);
}

bool SupervisorAlive(int pid) {
  if (!ProcessAlive(pid)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // argv is NUL-separated: "…/cambium\0supervise\0--data-dir\0D\0".
  return cmdline.find(std::string("\0supervise\0", 11)) != std::string::npos;
}

absl::Status RunSupervisor(const std::string& data_dir, const SupervisorOptions& options) {
  // Blocked before anything else so that sigtimedwait sees them; children get an
  // empty mask at exec (common/subprocess.cc).
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Supervisor supervisor(data_dir, options);
  absl::Status done = supervisor.Run();
  if (!done.ok()) LogError("supervisor_failed", {{"status", done}});
  return done;
}

}  // namespace cambium::cli
