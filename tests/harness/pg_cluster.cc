#include "tests/harness/pg_cluster.h"

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "tests/harness/net.h"

namespace cambium::testing {
namespace {

std::string Tail(const std::string& path, size_t bytes) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace

std::string PostgresBinDir() {
  const char* dir = std::getenv("CAMBIUM_PG_BINDIR");
  return dir && *dir ? dir : "/usr/lib/postgresql/15/bin";
}

std::string PostgresBin(const std::string& name) { return PostgresBinDir() + "/" + name; }

absl::StatusOr<std::unique_ptr<PgCluster>> PgCluster::Create(PgClusterOptions options) {
  auto dir = TempDir::Create("cambium-pg-");
  if (!dir.ok()) return dir.status();
  auto port = FreePort();
  if (!port.ok()) return port.status();
  std::unique_ptr<PgCluster> cluster(new PgCluster(std::move(*dir), *port));
  cluster->pgdata_ = cluster->dir_.Sub("pgdata");
  cluster->log_file_ = cluster->dir_.Sub("postgres.log");

  SubprocessOptions initdb;
  initdb.argv = {
      PostgresBin("initdb"), "-N", "-D", cluster->pgdata_, "-U", "postgres", "-E", "UTF8",
      "--locale=C"};
  initdb.argv.insert(initdb.argv.end(), options.initdb_args.begin(), options.initdb_args.end());
  initdb.user = "postgres";
  auto out = CheckCommand(initdb, absl::Minutes(2));
  if (!out.ok()) return Annotate(out.status(), "initdb");

  std::ofstream conf(cluster->pgdata_ + "/postgresql.conf", std::ios::app);
  conf << "\n# added by the Cambium test harness\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << cluster->port_ << "\n"
       << "unix_socket_directories = '" << cluster->dir_.path() << "'\n";
  for (const auto& [name, value] : options.settings) conf << name << " = '" << value << "'\n";
  conf.close();
  if (!conf) return absl::InternalError("could not write postgresql.conf");
  if (options.start) {
    absl::Status s = cluster->Start();
    if (!s.ok()) return s;
  }
  return cluster;
}

PgCluster::~PgCluster() {
  if (server_) (void)Stop();
}

absl::Status PgCluster::Start() {
  if (server_) return absl::FailedPreconditionError("server already running");
  SubprocessOptions postgres;
  postgres.argv = {PostgresBin("postgres"), "-D", pgdata_};
  postgres.user = "postgres";
  postgres.stdout_file = log_file_;
  postgres.stderr_file = log_file_;
  postgres.die_with_parent = true;
  auto server = Subprocess::Start(postgres);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  absl::Status ready = WaitUntilReady();
  if (!ready.ok()) {
    (void)server_->Stop(SIGKILL, absl::Seconds(5));
    server_.reset();
    return absl::Status(
        ready.code(), absl::StrFormat("%s; log tail:\n%s", ready.message(), Tail(log_file_, 3000)));
  }
  return absl::OkStatus();
}

absl::Status PgCluster::WaitUntilReady() {
  const absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (absl::Now() < deadline) {
    if (!server_->running()) return absl::InternalError("postgres exited during startup");
    SubprocessOptions ready;
    ready.argv = {PostgresBin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", std::to_string(port_)};
    auto r = RunCommand(ready, absl::Seconds(10));
    if (r.ok() && r->exit_code == 0) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("postgres did not accept connections within 2 minutes");
}

absl::Status PgCluster::Stop() {
  if (!server_) return absl::OkStatus();
  // SIGINT = fast shutdown; escalate to SIGQUIT (immediate), then SIGKILL.
  server_->Signal(SIGINT);
  auto code = server_->Wait(absl::Seconds(60));
  if (!code.ok()) code = server_->Stop(SIGQUIT, absl::Seconds(10));
  server_.reset();
  if (!code.ok()) return code.status();
  if (*code != 0) {
    return absl::InternalError(absl::StrFormat("postgres exited with code %d; log tail:\n%s", *code,
                                               Tail(log_file_, 2000)));
  }
  return absl::OkStatus();
}

absl::Status PgCluster::Crash() {
  if (!server_) return absl::FailedPreconditionError("server not running");
  auto code = server_->Stop(SIGKILL, absl::Seconds(10));
  server_.reset();
  return code.status();
}

std::string PgCluster::connection_string(const std::string& db) const {
  return absl::StrFormat("postgresql://postgres@127.0.0.1:%d/%s", port_, db);
}

absl::StatusOr<std::string> PgCluster::Sql(const std::string& sql, const std::string& db) const {
  SubprocessOptions psql;
  psql.argv = {PostgresBin("psql"),   "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d",
               connection_string(db), "-c", sql};
  auto out = CheckCommand(psql, absl::Minutes(5));
  if (!out.ok()) return out.status();
  std::string result = std::move(*out);
  while (!result.empty() && result.back() == '\n') result.pop_back();
  return result;
}

absl::StatusOr<std::string> PgCluster::Pgbench(const std::vector<std::string>& args,
                                               const std::string& db) const {
  SubprocessOptions pgbench;
  pgbench.argv = {PostgresBin("pgbench"), "-h", "127.0.0.1", "-p",
                  std::to_string(port_),  "-U", "postgres"};
  pgbench.argv.insert(pgbench.argv.end(), args.begin(), args.end());
  pgbench.argv.push_back(db);
  return CheckCommand(pgbench, absl::Minutes(20));
}

}  // namespace cambium::testing
