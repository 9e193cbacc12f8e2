// cambium-pageserver: stores every Postgres page version by LSN; branches and
// point-in-time restores are metadata pointers. See docs/pageserver.md.
#include <cstdio>

#include "common/logging.h"
#include "common/service.h"
#include "pageserver/pageserver.h"

int main(int argc, char** argv) {
  cambium::PrepareDaemonProcess();
  CLI::App app{"cambium-pageserver: versioned page store for stock PostgreSQL"};
  cambium::pageserver::PageServerConfig config;
  cambium::LogOptions log;
  cambium::SecurityOptions security;
  cambium::pageserver::AddPageServerFlags(app, &config);
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
  auto server = cambium::pageserver::PageServer::Start(config);
  if (!server.ok()) {
    cambium::LogError("pageserver_start_failed", {{"status", server.status()}});
    std::fprintf(stderr, "cambium-pageserver: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("cambium-pageserver listening on 127.0.0.1:%d\n", (*server)->port());
  std::fflush(stdout);
  const int sig = cambium::WaitForTerminationSignal();
  cambium::LogInfo("shutdown_requested", {{"signal", sig}});
  (*server)->Shutdown();
  return 0;
}
