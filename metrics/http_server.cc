#include "metrics/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/service.h"
#include "common/status.h"
#include "httplib.h"

namespace cambium::metrics {
namespace {

// Scrapers, probes, a console page and a person with curl: a few connections at a
// time.
constexpr int kThreads = 4;
// A kept-alive connection holds a thread until it is idle this long; Stop() waits
// for it.
constexpr int kKeepAliveSeconds = 2;

constexpr char kExpositionType[] = "text/plain; version=0.0.4; charset=utf-8";
constexpr char kTextType[] = "text/plain; charset=utf-8";

}  // namespace

void AddHttpFlags(CLI::App& app, HttpOptions* o) {
  app.add_option("--http-listen", o->listen,
                 "HTTP address of /metrics, /healthz and /readyz, 127.0.0.1:PORT (0 = any free "
                 "port); empty = none");
}

void Readiness::Set(absl::Status status) {
  absl::MutexLock lock(&mu_);
  status_ = std::move(status);
}

absl::Status Readiness::Get() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

struct HttpServer::Impl {
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> exited{false};
  bool stopped = false;
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::address() const { return absl::StrFormat("127.0.0.1:%d", port_); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& listen,
                                                              ReadinessCheck ready,
                                                              Registry* registry) {
  return StartWithRoutes(listen, [&](httplib::Server& s) {
    s.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
      res.set_content(registry->Exposition(), kExpositionType);
    });
    s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", kTextType);
    });
    s.Get("/readyz", [ready](const httplib::Request&, httplib::Response& res) {
      const absl::Status status = ready ? ready() : absl::OkStatus();
      if (status.ok()) {
        res.set_content("ready\n", kTextType);
      } else {
        res.status = 503;
        res.set_content(absl::StrFormat("not ready: %s\n", status.message()), kTextType);
      }
    });
    s.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 404;
      res.set_content("not found; try /metrics, /healthz or /readyz\n", kTextType);
    });
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::StartWithRoutes(
    const std::string& listen, const std::function<void(httplib::Server&)>& routes) {
  CAMBIUM_RETURN_IF_ERROR(CheckLoopbackAddress(listen));
  int port = 0;
  (void)absl::SimpleAtoi(listen.substr(listen.rfind(':') + 1), &port);
  auto impl = std::make_unique<Impl>();
  httplib::Server& s = impl->server;
  routes(s);
  // httplib's default also sets SO_REUSEPORT, which would let a second server bind a
  // port in use (and share its connections) instead of failing.
  s.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.set_keep_alive_timeout(kKeepAliveSeconds);
  s.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  // Always the IPv4 loopback ("localhost" could resolve to ::1).
  const std::string host = "127.0.0.1";
  const int bound = port == 0 ? s.bind_to_any_port(host) : (s.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return absl::UnavailableError(absl::StrFormat(
        "cannot listen on %s for HTTP (is another process using the port? port 0 picks a "
        "free one)",
        listen));
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    raw->server.listen_after_bind();
    raw->exited = true;
  });
  // stop() does nothing until the accept loop runs: wait for it, so that Stop()
  // right after Start() cannot leave the thread blocked in accept().
  while (!raw->server.is_running() && !raw->exited) absl::SleepFor(absl::Milliseconds(1));
  std::unique_ptr<HttpServer> server(new HttpServer(std::move(impl)));
  server->port_ = bound;
  if (raw->exited) {
    server->Stop();
    return absl::UnavailableError(absl::StrFormat("the HTTP server on %s stopped at once", listen));
  }
  return server;
}

void HttpServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(const HttpOptions& options,
                                                            ReadinessCheck ready) {
  if (options.listen.empty()) return std::unique_ptr<HttpServer>();
  CAMBIUM_ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server,
                           HttpServer::Start(options.listen, std::move(ready)));
  LogInfo("http_started", {{"http_listen", server->address()}});
  return server;
}

}  // namespace cambium::metrics
