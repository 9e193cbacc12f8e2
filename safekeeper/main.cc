// cambium-safekeeper: durable, replicated, fenced WAL for Cambium timelines.
//
//   cambium-safekeeper --listen 127.0.0.1:6500 --data-dir /var/lib/cambium/sk1 --id sk1
//
// Options can also come from a TOML file (--config) whose keys are the flag names.
// Refuses to start (exit 1, with the damaged file named) if a timeline on disk is
// damaged. SIGTERM/SIGINT: stop accepting calls, let in-flight appends finish
// their fsync, end streams, persist every timeline's state, exit 0.
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "auth/authenticator.h"
#include "common/logging.h"
#include "common/service.h"
#include "common/status.h"
#include "metrics/http_server.h"
#include "safekeeper/safekeeper.h"
#include "safekeeper/safekeeper_service.h"

namespace cambium::safekeeper {
namespace {

struct Config {
  std::string listen = "127.0.0.1:6500";
  SafekeeperOptions options;
  std::string checkpoint_interval = "1s";
  LogOptions log;
  SecurityOptions security;
  metrics::HttpOptions http;
};

int Fail(const absl::Status& status) {
  LogError("safekeeper_start_failed", {{"error", status}});
  std::fprintf(stderr, "cambium-safekeeper: cannot start: %s\n",
               std::string(status.message()).c_str());
  return 1;
}

int Run(const Config& config) {
  absl::Status logging = InitLogging(config.log);
  if (!logging.ok()) return Fail(logging);
  PrepareDaemonProcess();
  // Every method of a safekeeper is the data path: the service credential only.
  absl::Status security = InitProcessSecurity(config.security, /*require_service_token=*/true);
  if (!security.ok()) return Fail(security);
  ProcessSecurity process = GetProcessSecurity();
  absl::StatusOr<std::shared_ptr<auth::Authenticator>> authenticator =
      auth::Authenticator::Create({.service_token = process.client_token});
  if (!authenticator.ok()) return Fail(authenticator.status());
  process.processor = *authenticator;
  SetProcessSecurity(std::move(process));
  SafekeeperOptions options = config.options;
  absl::StatusOr<absl::Duration> interval = ParseHumanDuration(config.checkpoint_interval);
  if (!interval.ok()) return Fail(Annotate(interval.status(), "--checkpoint-interval"));
  options.checkpoint_interval = *interval;
  // /healthz answers while the timelines load; /readyz once they are served.
  metrics::Readiness readiness(absl::UnavailableError("the timelines are loading"));
  absl::StatusOr<std::unique_ptr<metrics::HttpServer>> http =
      metrics::StartHttpServer(config.http, readiness.AsCheck());
  if (!http.ok()) return Fail(http.status());
  absl::StatusOr<std::unique_ptr<SafekeeperServer>> server =
      SafekeeperServer::Start(options, config.listen);
  if (!server.ok()) return Fail(server.status());
  readiness.Set(absl::OkStatus());
  LogInfo("safekeeper_started", {{"id", options.id},
                                 {"listen", config.listen},
                                 {"data_dir", options.data_dir},
                                 {"pid", static_cast<int64_t>(getpid())}});
  const int sig = WaitForTerminationSignal();
  LogInfo("safekeeper_stopping", {{"id", options.id}, {"signal", sig}});
  readiness.Set(absl::UnavailableError("shutting down"));
  (*server)->Stop(SafekeeperServer::kDefaultStopGrace);
  if (*http) (*http)->Stop();
  LogInfo("safekeeper_stopped", {{"id", options.id}});
  return 0;
}

}  // namespace
}  // namespace cambium::safekeeper

int main(int argc, char** argv) {
  cambium::safekeeper::Config config;
  CLI::App app{"cambium-safekeeper: durable, replicated, fenced WAL (docs/safekeeper.md)"};
  app.add_option("--listen", config.listen,
                 "gRPC address, 127.0.0.1:PORT (default 127.0.0.1:6500)");
  app.add_option("--data-dir", config.options.data_dir, "Directory of the timelines")->required();
  app.add_option("--id", config.options.id, "This safekeeper's name in logs and errors");
  app.add_option("--checkpoint-interval", config.checkpoint_interval,
                 "How often commit LSNs are persisted and archived WAL removed (default 1s)");
  app.add_option("--max-unarchived-wal", config.options.max_unarchived_wal,
                 "Most bytes of a timeline's WAL kept beyond what the pageserver archived "
                 "(uploaded, with an object store); new WAL past it waits (default 4 GiB; 0: "
                 "no bound)");
  cambium::metrics::AddHttpFlags(app, &config.http);
  cambium::AddServiceFlags(app, &config.log);
  cambium::AddSecurityFlags(app, &config.security);
  CLI11_PARSE(app, argc, argv);
  return cambium::safekeeper::Run(config);
}
