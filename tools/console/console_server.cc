#include "tools/console/console_server.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "auth/token.h"
#include "common/service.h"
#include "common/status.h"
#include "httplib.h"
#include "metrics/http_server.h"
#include "tools/cli_usage.h"
#include "tools/console/assets.h"
#include "tools/console/console_api.h"

namespace cambium::console {
namespace {

using nlohmann::json;

constexpr char kJsonType[] = "application/json; charset=utf-8";
// Where index.html takes the per-process token.
constexpr char kTokenPlaceholder[] = "__CAMBIUM_CONSOLE_TOKEN__";
constexpr char kTokenHeader[] = "X-Cambium-Console";

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

void ReplyJson(httplib::Response& res, const absl::StatusOr<json>& result) {
  if (result.ok()) {
    res.status = 200;
    res.set_content(result->dump(), kJsonType);
    return;
  }
  res.status = HttpStatusOf(result.status().code());
  res.set_content(cli::ErrorJson(result.status()).dump(), kJsonType);
}

void Deny(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(json{{"error", {{"code", "PERMISSION_DENIED"}, {"message", message}}}}.dump(),
                  kJsonType);
}

// Every response: never cached, framed, sniffed or allowed to load anything from
// elsewhere.
void AddSecurityHeaders(httplib::Response& res) {
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cross-Origin-Resource-Policy", "same-origin");
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
}

}  // namespace

bool HostAllowed(std::string_view host, int port) {
  const std::string suffix = absl::StrFormat(":%d", port);
  if (!host.ends_with(suffix)) return false;
  const std::string name =
      absl::AsciiStrToLower(std::string(host.substr(0, host.size() - suffix.size())));
  return name == "127.0.0.1" || name == "localhost";
}

bool LoopbackPeer(std::string_view address) {
  if (address.starts_with("::ffff:")) return address.substr(7).starts_with("127.");
  return address == "::1" || address.starts_with("127.");
}

struct ConsoleServer::Impl {
  Impl(const ConsoleOptions& options, std::string token)
      : options(options), token(std::move(token)), api(options.data_dir, options.tenant) {}

  // Installs the console's routes on `server` (before it listens).
  void Route(httplib::Server& server);
  // The API's routes.
  void Api(const httplib::Request& req, httplib::Response& res);

  const ConsoleOptions options;
  const std::string token;
  ConsoleApi api;
  std::unique_ptr<metrics::HttpServer> http;
};

void ConsoleServer::Impl::Route(httplib::Server& server) {
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    AddSecurityHeaders(res);
    if (!LoopbackPeer(req.remote_addr)) {
      Deny(res, 403, "the console answers loopback clients only");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!HostAllowed(req.get_header_value("Host"), req.local_port)) {
      Deny(res, 403,
           absl::StrFormat("this is the Cambium console at http://127.0.0.1:%d/; a request for "
                           "host \"%s\" is refused",
                           req.local_port,
                           absl::CHexEscape(req.get_header_value("Host").substr(0, 100))));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content(R"({"error":{"code":"INVALID_ARGUMENT","message":"read-only: GET only"}})",
                      kJsonType);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.path.starts_with("/api/") &&
        !auth::HashesEqual(req.get_header_value(kTokenHeader), token)) {
      Deny(res, 403, "an API call needs the console page's token (open the page itself)");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  for (const Asset& asset : Assets()) {
    if (asset.path == "/index.html") {
      // The page carries the token its API calls need.
      const std::string page =
          absl::StrReplaceAll(std::string(asset.body), {{kTokenPlaceholder, token}});
      for (const char* path : {"/", "/index.html"}) {
        server.Get(path, [page](const httplib::Request&, httplib::Response& res) {
          res.set_content(page, "text/html; charset=utf-8");
        });
      }
      continue;
    }
    server.Get(std::string(asset.path), [asset](const httplib::Request&, httplib::Response& res) {
      res.set_content(asset.body.data(), asset.body.size(),
                      std::string(asset.content_type).c_str());
    });
  }
  server.Get("/api/.*",
             [this](const httplib::Request& req, httplib::Response& res) { Api(req, res); });
  server.Get(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(R"({"error":{"code":"NOT_FOUND","message":"no such page"}})", kJsonType);
  });
}

void ConsoleServer::Impl::Api(const httplib::Request& req, httplib::Response& res) {
  const std::string branch = req.get_param_value("branch");
  const std::string at = req.get_param_value("at");
  auto int_param = [&](const char* name, int fallback) -> absl::StatusOr<int> {
    if (!req.has_param(name)) return fallback;
    int v = 0;
    if (!absl::SimpleAtoi(req.get_param_value(name), &v)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s must be a number", name));
    }
    return v;
  };
  absl::StatusOr<json> result = absl::NotFoundError("no such API call: " + req.path);
  if (req.path == "/api/info") {
    result = json{{"command_options", options.command_options}};
  } else if (req.path == "/api/branches") {
    result = api.Branches();
  } else if (req.path == "/api/endpoints") {
    result = api.Endpoints();
  } else if (req.path == "/api/history") {
    absl::StatusOr<int> buckets = int_param("buckets", 200);
    result = buckets.ok() ? api.History(branch, *buckets) : buckets.status();
  } else if (req.path == "/api/tables") {
    result = api.Tables(branch, at);
  } else if (req.path == "/api/preview") {
    absl::StatusOr<int> limit = int_param("limit", 20);
    result =
        limit.ok() ? api.Preview(branch, at, req.get_param_value("table"), *limit) : limit.status();
  }
  ReplyJson(res, result);
}

ConsoleServer::ConsoleServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ConsoleServer::~ConsoleServer() { Stop(); }

int ConsoleServer::port() const { return impl_->http->port(); }

std::string ConsoleServer::url() const { return absl::StrFormat("http://127.0.0.1:%d/", port()); }

const std::string& ConsoleServer::token() const { return impl_->token; }

absl::StatusOr<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(const ConsoleOptions& options) {
  CAMBIUM_ASSIGN_OR_RETURN(std::string token, auth::RandomHex(16));
  auto impl = std::make_unique<Impl>(options, std::move(token));
  Impl* raw = impl.get();
  CAMBIUM_ASSIGN_OR_RETURN(impl->http,
                           metrics::HttpServer::StartWithRoutes(
                               options.listen, [raw](httplib::Server& s) { raw->Route(s); }));
  return std::unique_ptr<ConsoleServer>(new ConsoleServer(std::move(impl)));
}

void ConsoleServer::Stop() { impl_->http->Stop(); }

int RunConsole(const ConsoleOptions& options,
               const std::function<int(const absl::StatusOr<cli::Output>&)>& report) {
  // SIGINT and SIGTERM are taken by WaitForTerminationSignal only: blocked before
  // any thread starts (the programs the CLI starts get a clean mask).
  PrepareDaemonProcess();
  // A stack must be there; this also sets the token every call carries.
  if (absl::Status ok = ConsoleApi(options.data_dir, options.tenant).Check(); !ok.ok()) {
    return report(ok);
  }
  absl::StatusOr<std::unique_ptr<ConsoleServer>> server = ConsoleServer::Start(options);
  if (!server.ok()) return report(server.status());
  const std::string url = (*server)->url();
  const int code = report(
      cli::Output{{{"url", url},
                   {"listen", absl::StrFormat("127.0.0.1:%d", (*server)->port())},
                   {"pid", getpid()}},
                  absl::StrFormat("Cambium console: %s (read-only; Ctrl-C stops it)\n", url)});
  std::cout.flush();
  if (code != 0) return code;
  (void)WaitForTerminationSignal();
  (*server)->Stop();
  return 0;
}

}  // namespace cambium::console
