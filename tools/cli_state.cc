#include "tools/cli_state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/checksum.h"
#include "common/files.h"
#include "common/status.h"
#include "toml++/toml.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json ToJson(const Daemon& d) {
  return {{"name", d.name}, {"port", d.port}, {"http_port", d.http_port},
          {"pid", d.pid},   {"log", d.log},   {"argv", d.argv}};
}

Daemon DaemonFrom(const json& j) {
  Daemon d;
  d.name = j.value("name", "");
  d.port = j.value("port", 0);
  d.http_port = j.value("http_port", 0);
  d.pid = j.value("pid", 0);
  d.log = j.value("log", "");
  if (j.contains("argv") && j["argv"].is_array()) {
    for (const auto& arg : j["argv"]) {
      if (arg.is_string()) d.argv.push_back(arg.get<std::string>());
    }
  }
  return d;
}

// The data_dir key of a TOML config file, if it has one.
absl::StatusOr<std::optional<std::string>> ReadConfigDataDir(const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("config %s: %s", path, std::string(e.description())));
  }
  std::optional<std::string> d = table["data_dir"].value<std::string>();
  if (d && d->empty()) d.reset();
  return d;
}

absl::StatusOr<json> ReadJson(const std::string& path) {
  CAMBIUM_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::DataLossError(
        absl::StrFormat("%s is not valid JSON; remove it to start over", path));
  }
  return j;
}

}  // namespace

absl::StatusOr<DataDirLocation> LocateDataDir(const std::string& flag) {
  if (!flag.empty()) return DataDirLocation{flag, "--data-dir"};
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return std::string(v != nullptr ? v : "");
  };
  if (std::string d = env("CAMBIUM_DATA_DIR"); !d.empty()) {
    return DataDirLocation{d, "$CAMBIUM_DATA_DIR"};
  }
  const std::string home = env("HOME");
  std::vector<std::string> configs;
  const std::string explicit_config = env("CAMBIUM_CONFIG");
  if (!explicit_config.empty()) {
    configs.push_back(explicit_config);
  } else {
    const std::string xdg = env("XDG_CONFIG_HOME");
    if (!xdg.empty()) {
      configs.push_back(xdg + "/cambium/cambium.toml");
    } else if (!home.empty()) {
      configs.push_back(home + "/.config/cambium/cambium.toml");
    }
    configs.push_back("/etc/cambium/cambium.toml");
  }
  for (const std::string& config : configs) {
    std::error_code ec;
    if (config != explicit_config && !fs::exists(config, ec)) continue;
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<std::string> d, ReadConfigDataDir(config));
    if (d) return DataDirLocation{*d, "config " + config};
  }
  std::error_code ec;
  if (fs::is_directory("./.cambium", ec)) return DataDirLocation{"./.cambium", "./.cambium"};
  if (geteuid() == 0) return DataDirLocation{"/var/lib/cambium", "default"};
  const std::string data = env("XDG_DATA_HOME");
  return DataDirLocation{(data.empty() ? home + "/.local/share" : data) + "/cambium", "default"};
}

absl::StatusOr<DataDir> DataDir::Open(const std::string& path, bool create) {
  std::error_code ec;
  if (!create && !fs::exists(path + "/stack.json", ec)) {
    return absl::NotFoundError(absl::StrFormat(
        "no Cambium stack in %s; `cambium up` starts one there (or give --data-dir, "
        "$CAMBIUM_DATA_DIR or data_dir in /etc/cambium/cambium.toml)",
        path));
  }
  fs::create_directories(path, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrFormat("cannot create %s: %s", path, ec.message()));
  const std::string abs = fs::canonical(path, ec).string();
  if (ec) return absl::InternalError(absl::StrFormat("cannot resolve %s: %s", path, ec.message()));
  // Private, even if it existed with another mode: nobody but its owner (root)
  // reads state, logs or daemon data. Postgres reaches its mounts and sockets in the
  // runtime directory instead (RuntimeDir).
  if (chmod(abs.c_str(), 0700) != 0) return ErrnoToStatus(errno, "chmod 0700 " + abs);
  for (const char* sub : {"logs", "endpoints"}) fs::create_directories(abs + "/" + sub, ec);
  const std::string lock = abs + "/.lock";
  int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, "open " + lock);
  // Wait for a concurrent command on the same stack rather than failing.
  if (flock(fd, LOCK_EX) != 0) {
    close(fd);
    return ErrnoToStatus(errno, "lock " + lock);
  }
  return DataDir(abs, fd);
}

std::string DataDir::RuntimeDir() const {
  // Stable per data directory, short enough for Unix socket paths (107 bytes).
  return absl::StrFormat("%s/%016x", kRuntimeRoot, Checksum64(path_));
}

std::string DataDir::EndpointRuntimeDir(const std::string& name) const {
  // sockaddr_un.sun_path holds 107 bytes and a NUL; "/.s.PGSQL.65535.lock" is 20.
  constexpr size_t kSocketPathMax = 107;
  const std::string base = RuntimeDir() + "/ep/";
  if (base.size() + name.size() + 20 <= kSocketPathMax) return base + name;
  return absl::StrFormat("%s%s-%016x", base, name.substr(0, 24), Checksum64(name));
}

absl::Status DataDir::PrepareRuntimeDir() const {
  // 0711 all the way: other users may pass through to a path they know, but list
  // nothing; each endpoint's directory is the postgres user's own, 0700.
  for (const std::string& d : {std::string(kRuntimeRoot), RuntimeDir(), RuntimeDir() + "/ep"}) {
    if (mkdir(d.c_str(), 0711) != 0 && errno != EEXIST) return ErrnoToStatus(errno, "mkdir " + d);
    struct stat st;
    if (lstat(d.c_str(), &st) != 0) return ErrnoToStatus(errno, "stat " + d);
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("%s is not a directory of this user; remove it and try again", d));
    }
    if (chmod(d.c_str(), 0711) != 0) return ErrnoToStatus(errno, "chmod " + d);
  }
  // What the runtime directory is for, for a person looking at /run/cambium.
  return WriteFileAtomically(RuntimeDir() + "/data_dir", path_ + "\n");
}

DataDir::DataDir(DataDir&& other) noexcept
    : path_(std::move(other.path_)), lock_fd_(other.lock_fd_) {
  other.lock_fd_ = -1;
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) close(lock_fd_);
}

bool DataDir::HasStack() const { return fs::exists(Sub("stack.json")); }

absl::StatusOr<StackState> DataDir::LoadStack() const { return LoadStackFile(Sub("stack.json")); }

absl::StatusOr<StackState> LoadStackFile(const std::string& path) {
  auto j = ReadJson(path);
  if (!j.ok()) return j.status();
  StackState s;
  s.tenant = j->value("tenant", "default");
  s.object_store = j->value("object_store", "");
  if (j->contains("pageserver")) s.pageserver = DaemonFrom((*j)["pageserver"]);
  if (j->contains("safekeepers")) {
    for (const auto& sk : (*j)["safekeepers"]) s.safekeepers.push_back(DaemonFrom(sk));
  }
  if (j->contains("more_pageservers")) {
    for (const auto& ps : (*j)["more_pageservers"]) s.more_pageservers.push_back(DaemonFrom(ps));
  }
  if (j->contains("etcd")) s.etcd = DaemonFrom((*j)["etcd"]);
  return s;
}

std::vector<Daemon*> StackState::Daemons() {
  std::vector<Daemon*> out;
  for (Daemon& sk : safekeepers) out.push_back(&sk);
  if (!etcd.argv.empty()) out.push_back(&etcd);
  out.push_back(&pageserver);
  for (Daemon& ps : more_pageservers) out.push_back(&ps);
  return out;
}

std::vector<const Daemon*> StackState::Daemons() const {
  std::vector<const Daemon*> out;
  for (Daemon* d : const_cast<StackState*>(this)->Daemons()) out.push_back(d);
  return out;
}

std::vector<const Daemon*> StackState::Pageservers() const {
  std::vector<const Daemon*> out = {&pageserver};
  for (const Daemon& ps : more_pageservers) out.push_back(&ps);
  return out;
}

absl::Status DataDir::SaveStack(const StackState& s) const {
  json j = {{"version", 1},
            {"tenant", s.tenant},
            {"object_store", s.object_store},
            {"pageserver", ToJson(s.pageserver)},
            {"safekeepers", json::array()}};
  for (const Daemon& sk : s.safekeepers) j["safekeepers"].push_back(ToJson(sk));
  if (!s.more_pageservers.empty()) {
    j["more_pageservers"] = json::array();
    for (const Daemon& ps : s.more_pageservers) j["more_pageservers"].push_back(ToJson(ps));
    j["etcd"] = ToJson(s.etcd);
  }
  return WriteFileAtomically(Sub("stack.json"), j.dump(2) + "\n");
}

absl::StatusOr<std::vector<EndpointState>> DataDir::LoadEndpoints() const {
  return LoadEndpointFiles(path_);
}

absl::StatusOr<std::vector<EndpointState>> LoadEndpointFiles(const std::string& data_dir) {
  std::vector<EndpointState> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data_dir + "/endpoints", ec)) {
    const std::string file = entry.path().string() + "/endpoint.json";
    if (!fs::exists(file)) continue;
    auto j = ReadJson(file);
    if (!j.ok()) return j.status();
    // Unknown keys are ignored (older files also hold "served_branch" and "wanted").
    EndpointState e;
    e.name = j->value("name", entry.path().filename().string());
    e.branch = j->value("branch", "");
    e.read_only = j->value("read_only", false);
    e.follow = j->value("follow", false);
    e.port = j->value("port", 0);
    e.postgres_pid = j->value("postgres_pid", 0);
    e.shim_pid = j->value("shim_pid", 0);
    e.http_port = j->value("http_port", 0);
    e.restart_pending = j->value("restart_pending", false);
    e.stopped = j->value("stopped", false);
    out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

bool EndpointCrashed(const EndpointState& ep) {
  if (ep.restart_pending) return true;
  if (ep.postgres_pid == 0 && ep.shim_pid == 0) return false;
  return !ProcessAlive(ep.postgres_pid) || !ProcessAlive(ep.shim_pid);
}

absl::Status DataDir::SaveEndpoint(const EndpointState& e) const {
  std::error_code ec;
  fs::create_directories(EndpointDir(e.name), ec);
  json j = {
      {"name", e.name},         {"branch", e.branch},       {"read_only", e.read_only},
      {"follow", e.follow},     {"port", e.port},           {"postgres_pid", e.postgres_pid},
      {"shim_pid", e.shim_pid}, {"http_port", e.http_port}, {"restart_pending", e.restart_pending},
      {"stopped", e.stopped}};
  return WriteFileAtomically(EndpointDir(e.name) + "/endpoint.json", j.dump(2) + "\n");
}

absl::Status DataDir::RemoveEndpoint(const std::string& name) const {
  std::error_code ec;
  fs::remove_all(EndpointDir(name), ec);
  if (ec)
    return absl::InternalError(absl::StrFormat("remove %s: %s", EndpointDir(name), ec.message()));
  return absl::OkStatus();
}

}  // namespace cambium::cli
