// `cambium logs` and `cambium doctor` (tools/cli_ops.h).
#include "tools/cli_ops.h"

#include <pwd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/net.h"
#include "common/subprocess.h"
#include "tools/cli_usage.h"
#include "tools/cli_util.h"
#include "tools/supervisor.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// At most this much of a log is read to find its last lines.
constexpr std::streamoff kTailWindow = 16 << 20;

// The complete lines of `path` from byte `*offset` on; advances *offset past them
// (a partial last line waits for its end). A file that shrank (rotated, truncated)
// is read again from its start.
std::vector<std::string> ReadNewLines(const std::string& path, std::streamoff* offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < *offset) *offset = 0;
  if (size == *offset) return {};
  in.seekg(*offset);
  std::string data(static_cast<size_t>(size - *offset), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  const size_t end = data.rfind('\n');
  if (end == std::string::npos) return {};
  *offset += static_cast<std::streamoff>(end + 1);
  return absl::StrSplit(data.substr(0, end), '\n');
}

// The last `n` lines of `path`; *offset is set to its end.
std::vector<std::string> LastLines(const std::string& path, int n, std::streamoff* offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : 0;
  *offset = size > kTailWindow ? size - kTailWindow : 0;
  std::vector<std::string> lines = ReadNewLines(path, offset);
  if (static_cast<int>(lines.size()) > n) lines.erase(lines.begin(), lines.end() - n);
  return lines;
}

struct Check {
  std::string name;
  std::string status;  // ok, warning, error
  std::string detail;
  std::string fix;
};

// The nearest existing directory at or above `path`.
std::string ExistingAncestor(std::string path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  while (!p.empty() && !fs::exists(p, ec) && p != p.root_path()) p = p.parent_path();
  return p.string();
}

}  // namespace

absl::StatusOr<std::vector<LogFile>> LogFilesOf(const std::string& data_dir,
                                                const std::string& target) {
  std::vector<LogFile> daemons;
  absl::StatusOr<StackState> stack = LoadStackFile(data_dir + "/stack.json");
  if (stack.ok()) {
    std::vector<const Daemon*> all = {&stack->pageserver};
    for (const Daemon& sk : stack->safekeepers) all.push_back(&sk);
    for (const Daemon* d : all) {
      if (d->name.empty()) continue;
      daemons.push_back(
          {d->name, d->log.empty() ? data_dir + "/logs/" + d->name + ".log" : d->log});
    }
  }
  daemons.push_back({"supervisor", data_dir + "/logs/supervisor.log"});
  if (target.empty()) return daemons;
  std::vector<LogFile> out;
  for (const LogFile& d : daemons) {
    if (d.name == target || (target == "safekeepers" && d.name.rfind("sk", 0) == 0)) {
      out.push_back(d);
    }
  }
  if (!out.empty()) return out;
  absl::StatusOr<std::vector<EndpointState>> endpoints = LoadEndpointFiles(data_dir);
  std::vector<std::string> names;
  if (endpoints.ok()) {
    for (const EndpointState& ep : *endpoints) {
      names.push_back(ep.name);
      if (ep.name != target) continue;
      const std::string dir = data_dir + "/endpoints/" + ep.name;
      return std::vector<LogFile>{{ep.name + "/postgres", dir + "/postgres.log"},
                                  {ep.name + "/shim", dir + "/shim.log"}};
    }
  }
  std::vector<std::string> daemon_names;
  for (const LogFile& d : daemons) daemon_names.push_back(d.name);
  return absl::NotFoundError(absl::StrFormat(
      "no daemon or endpoint named %s; logs are kept for: %s, safekeepers%s%s", target,
      absl::StrJoin(daemon_names, ", "), names.empty() ? "" : ", ", absl::StrJoin(names, ", ")));
}

absl::StatusOr<std::vector<LogFile>> Cli::LogFiles(const std::string& target) {
  return LogFilesOf(dir_.path(), target);
}

int PrintLogs(const std::vector<LogFile>& files, int lines, bool follow, bool as_json) {
  std::vector<std::streamoff> offsets(files.size(), 0);
  const bool many = files.size() > 1;
  json tails = json::array();
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<std::string> tail = LastLines(files[i].path, lines, &offsets[i]);
    if (as_json && follow) {
      for (const std::string& l : tail) {
        std::cout << json::object({{"name", files[i].name}, {"line", l}}).dump() << "\n";
      }
    } else if (as_json) {
      tails.push_back({{"name", files[i].name}, {"path", files[i].path}, {"lines", tail}});
    } else {
      if (many) std::cout << "==> " << files[i].name << " (" << files[i].path << ") <==\n";
      if (!fs::exists(files[i].path)) std::cout << "(no log yet)\n";
      for (const std::string& l : tail) std::cout << l << "\n";
      if (many && !follow && i + 1 < files.size()) std::cout << "\n";
    }
  }
  if (as_json && !follow) std::cout << json::object({{"logs", tails}}).dump(2) << "\n";
  std::cout.flush();
  // Until interrupted (SIGINT), or until the reader goes (SIGPIPE ends the process).
  while (follow) {
    absl::SleepFor(absl::Milliseconds(200));
    for (size_t i = 0; i < files.size(); ++i) {
      for (const std::string& l : ReadNewLines(files[i].path, &offsets[i])) {
        if (as_json) {
          std::cout << json::object({{"name", files[i].name}, {"line", l}}).dump() << "\n";
        } else {
          std::cout << (many ? files[i].name + " | " : "") << l << "\n";
        }
      }
    }
    std::cout.flush();
    if (!std::cout) return 1;
  }
  return 0;
}

Output Doctor(const DataDirLocation& where) {
  std::vector<Check> checks;
  auto add = [&](std::string name, bool ok, std::string detail, std::string fix,
                 bool warning_only = false) {
    checks.push_back({std::move(name), ok ? "ok" : (warning_only ? "warning" : "error"),
                      std::move(detail), ok ? "" : std::move(fix)});
  };
  add("root", geteuid() == 0, geteuid() == 0 ? "running as root" : "not running as root",
      "run cambium as root: the shim mounts with allow_other and Postgres runs as user "
      "postgres");
  struct stat st;
  const bool fuse_dev = stat("/dev/fuse", &st) == 0 && S_ISCHR(st.st_mode);
  add("fuse_device", fuse_dev, fuse_dev ? "/dev/fuse present" : "/dev/fuse is missing",
      "load the fuse module (`modprobe fuse`), or give the container --device /dev/fuse");
  const bool fusermount =
      access("/usr/bin/fusermount3", X_OK) == 0 || access("/bin/fusermount3", X_OK) == 0;
  add("fusermount3", fusermount, fusermount ? "fusermount3 installed" : "fusermount3 not found",
      "apt-get install fuse3");
  const bool pg_user = getpwnam("postgres") != nullptr;
  add("postgres_user", pg_user, pg_user ? "user postgres exists" : "no user postgres",
      "apt-get install postgresql-15 (it creates the postgres user)");
  const std::string postgres = std::string(CAMBIUM_PG_BINDIR) + "/postgres";
  absl::StatusOr<std::string> pg_version = CheckCommand({.argv = {postgres, "--version"}});
  const std::string pg_text =
      pg_version.ok() ? std::string(absl::StripTrailingAsciiWhitespace(*pg_version)) : "";
  add("postgres", pg_text.find(" 15.") != std::string::npos,
      pg_version.ok() ? pg_text : postgres + " does not run",
      "apt-get install postgresql-15 (Cambium runs PostgreSQL 15 from " +
          std::string(CAMBIUM_PG_BINDIR) + ")");
  for (const char* program : {"cambium-pageserver", "cambium-safekeeper", "cambium-shim"}) {
    absl::StatusOr<std::string> path = FindProgram(program);
    add(program, path.ok(), path.ok() ? *path : std::string(path.status().message()),
        "reinstall Cambium (`cmake --install`, or the Debian package)");
  }

  // The data directory and its disk.
  std::error_code ec;
  const bool exists = fs::is_directory(where.path, ec);
  const bool has_stack = fs::exists(where.path + "/stack.json", ec);
  const std::string base = ExistingAncestor(where.path);
  const bool writable = access(base.c_str(), W_OK) == 0;
  add("data_dir", writable,
      absl::StrFormat("%s (from %s)%s", where.path, where.source,
                      has_stack ? ", holds a stack"
                      : exists  ? ", holds no stack yet"
                                : ", does not exist yet (`cambium up` creates it)"),
      absl::StrFormat("%s is not writable: choose another with --data-dir or $CAMBIUM_DATA_DIR",
                      base));
  struct statvfs vfs;
  if (statvfs(base.c_str(), &vfs) == 0) {
    const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    const bool enough = free_bytes >= (2ull << 30);
    checks.push_back(
        {"disk_space", free_bytes < (256ull << 20) ? "error" : (enough ? "ok" : "warning"),
         absl::StrFormat("%s free on the file system of %s", FormatBytes(free_bytes), base),
         enough ? ""
                : "free disk space: the pageserver and safekeepers refuse writes on a full "
                  "disk"});
  }
  const std::string run = fs::exists(kRuntimeRoot, ec) ? kRuntimeRoot : "/run";
  const bool run_ok = access(run.c_str(), W_OK) == 0;
  add("runtime_dir", run_ok, absl::StrFormat("%s is %swritable", run, run_ok ? "" : "not "),
      "endpoints need " + std::string(kRuntimeRoot) + " (mounts and sockets): run as root");

  // The stack's daemons and ports.
  if (has_stack) {
    absl::StatusOr<StackState> stack = LoadStackFile(where.path + "/stack.json");
    absl::StatusOr<SupervisorState> supervisor = LoadSupervisorState(where.path);
    if (stack.ok()) {
      std::vector<Daemon> daemons = {stack->pageserver};
      daemons.insert(daemons.end(), stack->safekeepers.begin(), stack->safekeepers.end());
      for (Daemon d : daemons) {
        if (supervisor.ok()) {
          for (const DaemonRecord& r : supervisor->daemons) {
            if (r.name == d.name) d.pid = r.pid;
          }
        }
        const bool ours = d.pid > 0 && ProcessAlive(d.pid);
        const bool listening = d.port > 0 && LoopbackPortOpen(d.port);
        if (ours) {
          add(d.name, listening,
              absl::StrFormat("running, pid %d, 127.0.0.1:%d%s", d.pid, d.port,
                              listening ? "" : " (not answering)"),
              "see `cambium logs " + d.name + "`", /*warning_only=*/true);
        } else {
          add(d.name, !listening,
              absl::StrFormat("not running%s", listening
                                                   ? absl::StrFormat("; its port %d is taken by "
                                                                     "another program",
                                                                     d.port)
                                                   : ""),
              "`cambium up` starts it (on another port if its own is taken)",
              /*warning_only=*/true);
        }
      }
    }
    // The object store the pageserver keeps its history in: reachable with the
    // stack's key, and holding uploads (docs/operations.md).
    if (stack.ok() && !stack->object_store.empty()) {
      const std::string credentials = StackCredentialsFile(where.path);
      absl::StatusOr<StackUploads> uploads = ListStackUploads(stack->object_store, credentials);
      if (!uploads.ok()) {
        add("object_store", false, std::string(uploads.status().message()),
            "check the URL's endpoint and bucket, and the stack's key (" +
                (credentials.empty() ? "the environment's AWS_* variables" : credentials) +
                "); until the store answers, nothing written is off this disk");
      } else {
        add("object_store", !uploads->indexes.empty(),
            uploads->indexes.empty()
                ? uploads->store + " answers but holds no upload yet"
                : absl::StrFormat("%s: %d uploads kept, newest %s", uploads->store,
                                  uploads->indexes.size(), uploads->indexes.back().key),
            "see `cambium logs pageserver` (remote_upload_failed)", /*warning_only=*/true);
      }
    }
    absl::StatusOr<std::vector<EndpointState>> endpoints = LoadEndpointFiles(where.path);
    if (endpoints.ok()) {
      for (const EndpointState& ep : *endpoints) {
        if (ep.postgres_pid > 0 && ProcessAlive(ep.postgres_pid)) continue;
        if (ep.port > 0 && LoopbackPortOpen(ep.port)) {
          add("endpoint " + ep.name, false,
              absl::StrFormat("stopped, and its port %d is taken by another program", ep.port),
              "free the port, or start it with `cambium endpoint start " + ep.branch + " --port N`",
              /*warning_only=*/true);
        }
      }
    }
  }
  struct utsname uts;
  const std::string kernel = uname(&uts) == 0 ? std::string(uts.release) : "unknown";

  Output out;
  bool ok = true;
  out.json = {{"ok", true},
              {"version", Version()},
              {"kernel", kernel},
              {"data_dir", where.path},
              {"data_dir_source", where.source},
              {"checks", json::array()}};
  out.text = absl::StrFormat("cambium %s, kernel %s\n", Version(), kernel);
  for (const Check& c : checks) {
    ok &= c.status != "error";
    out.json["checks"].push_back(
        {{"name", c.name}, {"status", c.status}, {"detail", c.detail}, {"fix", c.fix}});
    out.text += absl::StrFormat("[%-7s] %-20s %s\n", c.status, c.name, c.detail);
    if (!c.fix.empty()) out.text += absl::StrFormat("          %-20s fix: %s\n", "", c.fix);
  }
  out.json["ok"] = ok;
  out.text += ok ? "Everything Cambium needs is in place.\n"
                 : "Some checks failed: fix them as said above.\n";
  out.exit_code = ok ? 0 : 1;
  return out;
}

}  // namespace cambium::cli
