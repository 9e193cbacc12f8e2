#include "tools/cli_util.h"

#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/net.h"
#include "common/service.h"
#include "common/status.h"
#include "common/subprocess.h"

namespace cambium::cli {

absl::StatusOr<int> StartDetached(const std::vector<std::string>& argv, const std::string& log,
                                  const std::string& user,
                                  const std::map<std::string, std::string>& env) {
  SubprocessOptions options;
  options.argv = argv;
  options.stdout_file = log;
  options.stderr_file = log;
  options.user = user;
  options.env = env;
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  return static_cast<int>((*process)->Release());
}

absl::Status GiveToPostgres(const std::vector<std::string>& paths) {
  const struct passwd* pg = getpwnam("postgres");
  if (pg == nullptr) return absl::NotFoundError("the postgres user does not exist");
  for (const std::string& p : paths) {
    if (lchown(p.c_str(), pg->pw_uid, pg->pw_gid) != 0) return ErrnoToStatus(errno, "chown " + p);
  }
  return absl::OkStatus();
}

namespace {
ProgressMode progress_mode = ProgressMode::kNone;
absl::Time progress_start = absl::Now();
}  // namespace

void SetProgressMode(ProgressMode mode) {
  progress_mode = mode;
  progress_start = absl::Now();
}

void ReportProgress(const std::string& stage, const std::string& message) {
  switch (progress_mode) {
    case ProgressMode::kNone:
      return;
    case ProgressMode::kTerminal:
      std::fprintf(stderr, "cambium: %s\n", message.c_str());
      break;
    case ProgressMode::kJson:
      std::fprintf(
          stderr, "%s\n",
          nlohmann::json({{"event", "progress"},
                          {"stage", stage},
                          {"message", message},
                          {"elapsed_ms", absl::ToInt64Milliseconds(absl::Now() - progress_start)}})
              .dump()
              .c_str());
      break;
  }
  std::fflush(stderr);
}

nlohmann::json MetricsUrl(int http_port) {
  if (http_port <= 0) return nullptr;
  return absl::StrFormat("http://127.0.0.1:%d/metrics", http_port);
}

absl::StatusOr<std::string> FindProgram(const std::string& name) {
  CAMBIUM_ASSIGN_OR_RETURN(const std::string self, SelfExe());
  const std::string dir = std::filesystem::path(self).parent_path().string();
  // The build tree's directory of each program (CMake's layout of this repository).
  const std::map<std::string, std::string> build_dirs = {{"cambium-pageserver", "pageserver"},
                                                         {"cambium-safekeeper", "safekeeper"},
                                                         {"cambium-shim", "compute-shim"}};
  std::vector<std::string> candidates = {dir + "/" + name, dir + "/../lib/cambium/" + name};
  if (auto it = build_dirs.find(name); it != build_dirs.end()) {
    candidates.push_back(dir + "/../" + it->second + "/" + name);
  }
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) == 0) {
      std::error_code ec;
      const std::string canonical = std::filesystem::canonical(c, ec).string();
      return ec ? c : canonical;
    }
  }
  std::string looked;
  for (const std::string& c : candidates) looked += (looked.empty() ? "" : ", ") + c;
  return absl::NotFoundError(absl::StrFormat(
      "%s is not installed next to %s (looked at %s); reinstall Cambium", name, self, looked));
}

std::string ProgramPath(const std::string& name) {
  absl::StatusOr<std::string> path = FindProgram(name);
  return path.ok() ? *path : name;
}

absl::StatusOr<std::string> SelfExe() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ErrnoToStatus(errno, "readlink /proc/self/exe");
  return std::string(buf, n);
}

bool ProcessAlive(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

absl::Status StopProcess(int pid, int sig, absl::Duration grace) {
  if (!ProcessAlive(pid)) return absl::OkStatus();
  if (kill(-pid, sig) != 0) kill(pid, sig);
  const absl::Time deadline = absl::Now() + grace;
  while (ProcessAlive(pid) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  if (ProcessAlive(pid)) {
    if (kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL);
    const absl::Time hard = absl::Now() + absl::Seconds(10);
    while (ProcessAlive(pid) && absl::Now() < hard) absl::SleepFor(absl::Milliseconds(50));
  }
  return ProcessAlive(pid) ? absl::InternalError(absl::StrFormat("process %d did not stop", pid))
                           : absl::OkStatus();
}

bool ProcessHasArgs(int pid, const std::vector<std::string>& args) {
  if (!ProcessAlive(pid)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
  return std::search(argv.begin(), argv.end(), args.begin(), args.end()) != argv.end();
}

absl::Status KillProcessesWithArgs(const std::vector<std::string>& args) {
  absl::Status first = absl::OkStatus();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    int pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid) || pid == getpid()) continue;
    if (ProcessHasArgs(pid, args)) first.Update(StopProcess(pid, SIGTERM, absl::Seconds(10)));
  }
  return first;
}

void CleanStaleMount(const std::string& path) { umount2(path.c_str(), MNT_DETACH); }

absl::StatusOr<absl::Time> ParseTimestamp(const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot read the time \"%s\": use RFC 3339 (2026-11-21T19:30:00Z), Postgres' form "
        "(2026-11-21 19:30:00+00), @UNIX_SECONDS, or a relative -5m / -90s / -2h",
        text));
  };
  if (text.empty()) return bad();
  if (text[0] == '-') {
    auto d = ParseHumanDuration(text.substr(1));
    if (!d.ok()) return bad();
    return absl::Now() - *d;
  }
  if (text[0] == '@') {
    double seconds;
    if (!absl::SimpleAtod(text.substr(1), &seconds)) return bad();
    return absl::FromUnixMicros(static_cast<int64_t>(seconds * 1e6));
  }
  std::string t = text;
  if (t.size() > 10 && t[10] == ' ') t[10] = 'T';
  // Postgres prints "+00" / "+05:30"; RFC 3339 wants "+00:00".
  if (t.size() > 3 && (t[t.size() - 3] == '+' || t[t.size() - 3] == '-') &&
      t.find('T') != std::string::npos) {
    t += ":00";
  }
  absl::Time out;
  std::string err;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%dT%H:%M:%E*S"}) {
    if (absl::ParseTime(format, t, absl::UTCTimeZone(), &out, &err)) return out;
  }
  return bad();
}

std::string FormatTimestamp(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

nlohmann::json TimeOrNull(absl::Time t) {
  return t == absl::InfinitePast() ? nlohmann::json(nullptr) : nlohmann::json(FormatTimestamp(t));
}

std::string FormatBytes(uint64_t n) {
  if (n >= (1ull << 30)) return absl::StrFormat("%.1f GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return absl::StrFormat("%.1f MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return absl::StrFormat("%.1f KiB", n / double(1ull << 10));
  return absl::StrFormat("%u B", n);
}

nlohmann::json MicrosOrNull(int64_t unix_micros) {
  return unix_micros == 0 ? nlohmann::json(nullptr)
                          : nlohmann::json(FormatTimestamp(absl::FromUnixMicros(unix_micros)));
}

nlohmann::json TextOrNull(const std::string& s) {
  return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

absl::StatusOr<PointText> ParsePoint(const std::string& text) {
  if (absl::StatusOr<Lsn> lsn = Lsn::Parse(text); lsn.ok()) return PointText{.lsn = *lsn};
  absl::StatusOr<absl::Time> t = ParseTimestamp(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "\"%s\" is neither an LSN (0/16B3748) nor a time (RFC 3339, -5m, @UNIX_SECONDS)", text));
  }
  return PointText{.time = *t};
}

std::string NameWithSuffix(const std::string& base, const std::string& suffix) {
  return base.substr(0, kMaxNameLength - std::min(kMaxNameLength, suffix.size())) + suffix;
}

std::string EphemeralName(const std::string& branch, const std::string& kind) {
  return NameWithSuffix(branch, absl::StrFormat("-%s-%d", kind, absl::ToUnixMillis(absl::Now())));
}

std::string Address(int port) { return absl::StrFormat("127.0.0.1:%d", port); }

bool DaemonUp(const Daemon& d) {
  return d.pid > 0 && ProcessAlive(d.pid) && d.port > 0 && LoopbackPortOpen(d.port);
}

DirWatch::DirWatch(const std::string& dir) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return;
  if (inotify_add_watch(fd_, dir.c_str(), IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO) <
      0) {
    close(fd_);
    fd_ = -1;
  }
}

DirWatch::~DirWatch() {
  if (fd_ >= 0) close(fd_);
}

void DirWatch::Wait(absl::Duration max_wait) {
  if (fd_ < 0) {
    absl::SleepFor(max_wait);
    return;
  }
  pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
  (void)poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(max_wait)));
  // Drain what came: the caller checks its condition again either way.
  alignas(inotify_event) char buf[4096];
  while (read(fd_, buf, sizeof(buf)) > 0) {
  }
}

}  // namespace cambium::cli
