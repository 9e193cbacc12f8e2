// cambium-shim: mounts a compute's PGDATA on Cambium storage so that a stock
// `postgres` runs on it. See compute-shim/shim.h.
#include <cstdio>

#include "common/logging.h"
#include "common/service.h"
#include "compute-shim/shim.h"
#include "metrics/http_server.h"

int main(int argc, char** argv) {
  cambium::PrepareDaemonProcess();
  CLI::App app{"cambium-shim: FUSE PGDATA for stock PostgreSQL on Cambium"};
  cambium::shim::ShimConfig config;
  cambium::LogOptions log;
  cambium::SecurityOptions security;
  cambium::metrics::HttpOptions http_options;
  cambium::shim::AddShimFlags(app, &config);
  cambium::metrics::AddHttpFlags(app, &http_options);
  cambium::AddServiceFlags(app, &log);
  cambium::AddSecurityFlags(app, &security);
  CLI11_PARSE(app, argc, argv);
  if (auto s = cambium::InitLogging(log); !s.ok()) {
    std::fprintf(stderr, "cambium-shim: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // Pages, mutations and WAL go to the stack's daemons under its service credential.
  if (auto s = cambium::InitProcessSecurity(security, /*require_service_token=*/true); !s.ok()) {
    std::fprintf(stderr, "cambium-shim: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  // /healthz answers during the election, WAL preparation and mount; /readyz once
  // PGDATA is mounted.
  cambium::metrics::Readiness readiness(absl::UnavailableError("not mounted yet"));
  auto http = cambium::metrics::StartHttpServer(http_options, readiness.AsCheck());
  if (!http.ok()) {
    cambium::LogError("shim_start_failed", {{"status", http.status()}});
    std::fprintf(stderr, "cambium-shim: %s\n", http.status().ToString().c_str());
    return 1;
  }
  auto shim = cambium::shim::Shim::Start(config);
  if (!shim.ok()) {
    cambium::LogError("shim_start_failed", {{"status", shim.status()}});
    std::fprintf(stderr, "cambium-shim: %s\n", shim.status().ToString().c_str());
    return 1;
  }
  std::printf("cambium-shim mounted %s at LSN %s\n", config.mountpoint.c_str(),
              (*shim)->start_lsn().ToString().c_str());
  std::fflush(stdout);
  readiness.Set(absl::OkStatus());
  const int sig = cambium::WaitForTerminationSignal();
  cambium::LogInfo("shutdown_requested", {{"signal", sig}});
  readiness.Set(absl::UnavailableError("unmounting"));
  absl::Status stopped = (*shim)->Stop();
  if (*http) (*http)->Stop();
  return stopped.ok() ? 0 : 1;
}
