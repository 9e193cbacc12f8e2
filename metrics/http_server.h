// HttpServer: the HTTP endpoints of a Cambium daemon, for monitoring:
//
//   GET /metrics   the registry's exposition, Prometheus text format 0.0.4
//   GET /healthz   200 "ok" while the process runs (liveness)
//   GET /readyz    200 "ready" once the daemon's readiness check passes, else 503
//                  with the reason (pageserver: repository loaded and gRPC serving;
//                  safekeeper: timelines loaded and serving; shim: mounted)
//   anything else  404
//
// Loopback only (common/service.h CheckLoopbackAddress), and unauthenticated by
// design: the endpoints carry no page data and no secrets (docs/security.md,
// docs/metrics.md). Every daemon takes `--http-listen 127.0.0.1:PORT` (config key
// `http-listen`; empty, the default, means no HTTP server).
//
// Requests are served by a small fixed pool of threads (cpp-httplib); Stop() (or the
// destructor) closes the listener, lets requests in progress finish and joins every
// thread. Failing to listen (a bad address, a port in use) is a Status, never a crash.
//
// Thread-safety: Start and Stop from one thread; the readiness check and the
// registry's exposition are called from the server's threads.
#ifndef CAMBIUM_METRICS_HTTP_SERVER_H_
#define CAMBIUM_METRICS_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace cambium::metrics {

// A field of every daemon's configuration (STYLE.md habit 7).
struct HttpOptions {
  // Address of /metrics, /healthz and /readyz: 127.0.0.1:PORT (0 = any free port).
  // Empty: no HTTP server. Default: empty.
  std::string listen;
};

// Adds --http-listen (and so the config key http-listen) to `app`.
void AddHttpFlags(CLI::App& app, HttpOptions* options);

// OK when the daemon is ready to serve; otherwise a status whose message says why not.
using ReadinessCheck = std::function<absl::Status()>;

// A daemon's readiness as its main() moves from starting to serving to stopping.
// Thread-safe.
class Readiness {
 public:
  explicit Readiness(absl::Status initial) : status_(std::move(initial)) {}
  void Set(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Get() const ABSL_LOCKS_EXCLUDED(mu_);
  // A check that reads this object, which must outlive the HTTP server.
  ReadinessCheck AsCheck() const {
    return [this] { return Get(); };
  }

 private:
  mutable absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

class HttpServer {
 public:
  // Listens on `listen` ("127.0.0.1:PORT" or "localhost:PORT"; port 0 picks a free
  // port) and serves `registry`. INVALID_ARGUMENT for an address that is not
  // loopback, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& listen,
                                                           ReadinessCheck ready,
                                                           Registry* registry = &DefaultRegistry());
  // The same server (loopback only, a small thread pool, no SO_REUSEPORT, clear
  // errors, Stop joins) with other routes: `routes` installs them on the server
  // before it listens (`cambium console`, tools/console/).
  static absl::StatusOr<std::unique_ptr<HttpServer>> StartWithRoutes(
      const std::string& listen, const std::function<void(httplib::Server&)>& routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT" as bound.
  std::string address() const;
  // Stops listening, waits for requests in progress and joins the threads. Later
  // calls do nothing.
  void Stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

// For a daemon's main(): nullptr when options.listen is empty; otherwise an
// HttpServer, logged as `http_started http_listen=127.0.0.1:PORT`.
absl::StatusOr<std::unique_ptr<HttpServer>> StartHttpServer(const HttpOptions& options,
                                                            ReadinessCheck ready);

}  // namespace cambium::metrics

#endif  // CAMBIUM_METRICS_HTTP_SERVER_H_
