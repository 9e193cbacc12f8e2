// cambium-pageserver: stores every Postgres page version by LSN; branches and
// point-in-time restores are metadata pointers. See docs/pageserver.md.
#include <cstdio>

#include "common/logging.h"
#include "common/service.h"
#include "metrics/http_server.h"
#include "pageserver/pageserver.h"

int main(int argc, char** argv) {
  cambium::PrepareDaemonProcess();
  CLI::App app{"cambium-pageserver: versioned page store for stock PostgreSQL"};
  cambium::pageserver::PageServerConfig config;
  cambium::LogOptions log;
  cambium::SecurityOptions security;
  cambium::metrics::HttpOptions http_options;
  cambium::pageserver::AddPageServerFlags(app, &config);
  cambium::metrics::AddHttpFlags(app, &http_options);
  cambium::AddServiceFlags(app, &log);
  cambium::AddSecurityFlags(app, &security);
  CLI11_PARSE(app, argc, argv);
  if (auto s = cambium::InitLogging(log); !s.ok()) {
    std::fprintf(stderr, "cambium-pageserver: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // The service token authenticates the stack's daemons to this one and this one to
  // the safekeepers; PageServer::Start builds the authenticator from it.
  if (auto s = cambium::InitProcessSecurity(security, /*require_service_token=*/true); !s.ok()) {
    std::fprintf(stderr, "cambium-pageserver: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // /healthz answers while the repository loads; /readyz once gRPC serves it.
  cambium::metrics::Readiness readiness(absl::UnavailableError("the repository is loading"));
  auto http = cambium::metrics::StartHttpServer(http_options, readiness.AsCheck());
  if (!http.ok()) {
    cambium::LogError("pageserver_start_failed", {{"status", http.status()}});
    std::fprintf(stderr, "cambium-pageserver: %s\n", http.status().ToString().c_str());
    return 1;
  }
  auto server = cambium::pageserver::PageServer::Start(config);
  if (!server.ok()) {
    cambium::LogError("pageserver_start_failed", {{"status", server.status()}});
    std::fprintf(stderr, "cambium-pageserver: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("cambium-pageserver listening on 127.0.0.1:%d\n", (*server)->port());
  std::fflush(stdout);
  readiness.Set(absl::OkStatus());
  const int sig = cambium::WaitForTerminationSignal();
  cambium::LogInfo("shutdown_requested", {{"signal", sig}});
  readiness.Set(absl::UnavailableError("shutting down"));
  (*server)->Shutdown();
  if (*http) (*http)->Stop();
  return 0;
}
