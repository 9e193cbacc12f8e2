// ConsoleServer: `cambium console`, a small read-only web page over the local stack
// (docs/console.md). It shows the branch tree with sizes, TTLs and protection; per
// branch a chart of commits over its restorable window where picking a time shows
// the `cambium query --at` and `cambium branch restore --at` commands for it and
// previews a table as of then; and the endpoints with their state and lag.
//
// It serves the page's files compiled into the binary (assets.h) and the JSON of
// ConsoleApi under /api/. Every request must pass these checks, else 403:
//  - it comes from a loopback address (the server listens on 127.0.0.1 only);
//  - its Host header is 127.0.0.1:PORT or localhost:PORT, so a page of another
//    site cannot reach it through DNS rebinding;
//  - an /api/ call carries the page's token in X-Cambium-Console: a random value
//    made per process and written into the page, which other sites can neither
//    read nor send (a custom header needs a CORS preflight that is never granted).
// Only GET is served (405 otherwise). Responses forbid caching, framing and any
// script or style not served here (Content-Security-Policy).
//
// The console acts with the CLI's token ($CAMBIUM_TOKEN, else the stack's admin
// token) but offers reads only: it shows commands to run instead of running them.
//
// Thread-safety: Start and Stop from one thread; requests are served by a small
// pool of threads (metrics::HttpServer, the daemons' HTTP server with these
// routes; ConsoleApi is thread-safe).
#ifndef CAMBIUM_TOOLS_CONSOLE_CONSOLE_SERVER_H_
#define CAMBIUM_TOOLS_CONSOLE_CONSOLE_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/cli.h"

namespace cambium::console {

struct ConsoleOptions {
  // Where to listen: 127.0.0.1:PORT or localhost:PORT (port 0: any free port).
  // Default: 127.0.0.1:7480.
  std::string listen = "127.0.0.1:7480";
  // The stack's data directory (cli::LocateDataDir). Default: none.
  std::string data_dir;
  // The tenant; "" = the stack's. Default: "".
  std::string tenant;
  // Options the commands shown on the page repeat so that they reach the same
  // stack, e.g. {"--data-dir", "/srv/cambium"}. Default: none.
  std::vector<std::string> command_options;
};

// True if `host` (a Host header) names this server: 127.0.0.1:PORT or
// localhost:PORT (the name in any case).
bool HostAllowed(std::string_view host, int port);
// True for an IPv4 loopback address (127.0.0.0/8), ::1 or ::ffff:127.x.x.x.
bool LoopbackPeer(std::string_view address);

class ConsoleServer {
 public:
  // Listens and serves. INVALID_ARGUMENT for an address that is not loopback,
  // UNAVAILABLE when the port cannot be bound. A missing stack is not an error here:
  // the API answers with it (RunConsole checks first).
  static absl::StatusOr<std::unique_ptr<ConsoleServer>> Start(const ConsoleOptions& options);
  ~ConsoleServer();
  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;

  int port() const;
  // http://127.0.0.1:PORT/
  std::string url() const;
  // The token the page sends with every API call.
  const std::string& token() const;
  // Stops listening, waits for requests in progress, joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit ConsoleServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `cambium console`: checks the stack, starts the server, reports its URL through
// `report` (which prints a result the way every command does and returns the exit
// code), and serves until SIGINT or SIGTERM. Returns the exit code.
int RunConsole(const ConsoleOptions& options,
               const std::function<int(const absl::StatusOr<cli::Output>&)>& report);

}  // namespace cambium::console

#endif  // CAMBIUM_TOOLS_CONSOLE_CONSOLE_SERVER_H_
