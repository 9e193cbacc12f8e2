#include "tests/console/webdriver.h"

#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "httplib.h"
#include "tests/harness/net.h"

namespace cambium::testing {
namespace {

using nlohmann::json;

// The W3C name of an element reference in JSON.
constexpr char kElementKey[] = "element-6066-11e4-a52e-4f735466cecf";

std::optional<std::string> FirstExecutable(std::initializer_list<const char*> paths) {
  for (const char* p : paths) {
    if (access(p, X_OK) == 0) return std::string(p);
  }
  return std::nullopt;
}

absl::Status ErrorOf(int http_status, const json& value) {
  const std::string error = value.is_object() ? value.value("error", "") : "";
  const std::string message = value.is_object() ? value.value("message", "") : value.dump();
  const std::string text = absl::StrFormat("WebDriver %d %s: %s", http_status, error,
                                           message.substr(0, message.find('\n')));
  if (error == "no such element") return absl::NotFoundError(text);
  if (error == "timeout" || error == "script timeout") return absl::DeadlineExceededError(text);
  return absl::InternalError(text);
}

}  // namespace

std::optional<std::string> FindChromium() {
  return FirstExecutable({"/usr/bin/chromium", "/usr/lib/chromium/chromium"});
}

std::optional<std::string> FindChromedriver() {
  return FirstExecutable({"/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"});
}

WebDriver::WebDriver(std::unique_ptr<Subprocess> driver, int port)
    : driver_(std::move(driver)), http_(std::make_unique<httplib::Client>("127.0.0.1", port)) {
  http_->set_connection_timeout(5);
  http_->set_read_timeout(120);
  http_->set_write_timeout(30);
}

WebDriver::~WebDriver() {
  if (!session_.empty()) (void)Command("DELETE", "");
  // chromedriver and the browser it started share its process group.
  (void)driver_->Stop(SIGTERM, absl::Seconds(5));
}

absl::StatusOr<std::unique_ptr<WebDriver>> WebDriver::Start(const std::string& chromedriver,
                                                            const std::string& chromium,
                                                            const std::string& profile_dir,
                                                            const std::string& log_file) {
  CAMBIUM_ASSIGN_OR_RETURN(int port, FreePort());
  CAMBIUM_ASSIGN_OR_RETURN(
      std::unique_ptr<Subprocess> process,
      Subprocess::Start({.argv = {chromedriver, absl::StrFormat("--port=%d", port)},
                         .stdout_file = log_file,
                         .stderr_file = log_file,
                         .die_with_parent = true}));
  std::unique_ptr<WebDriver> d(new WebDriver(std::move(process), port));
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  for (;;) {
    absl::StatusOr<json> status = d->Command("GET", "/status");
    if (status.ok() && status->value("ready", false)) break;
    if (absl::Now() > deadline || !d->driver_->running()) {
      return absl::UnavailableError(
          absl::StrFormat("chromedriver did not get ready on port %d (log: %s)", port, log_file));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  // Without the background-networking flags Chromium keeps trying to reach its
  // services, which this machine's closed network refuses.
  const json args = {"--headless",
                     "--no-sandbox",
                     "--disable-gpu",
                     "--disable-quic",
                     "--no-first-run",
                     "--disable-background-networking",
                     "--disable-component-update",
                     "--disable-sync",
                     "--disable-dev-shm-usage",
                     "--window-size=1280,1000",
                     "--user-data-dir=" + profile_dir};
  const json caps = {{"capabilities",
                      {{"alwaysMatch",
                        {{"browserName", "chrome"},
                         {"goog:chromeOptions", {{"binary", chromium}, {"args", args}}}}}}}};
  CAMBIUM_ASSIGN_OR_RETURN(json session, d->Command("POST", "/session", caps));
  d->session_ = session.value("sessionId", "");
  if (d->session_.empty())
    return absl::InternalError("WebDriver gave no session: " + session.dump());
  return d;
}

absl::StatusOr<json> WebDriver::Command(const std::string& method, const std::string& path,
                                        const json& body) {
  const std::string url = session_.empty() ? path : "/session/" + session_ + path;
  httplib::Result res = method == "GET"      ? http_->Get(url)
                        : method == "DELETE" ? http_->Delete(url)
                                             : http_->Post(url, body.is_null() ? "{}" : body.dump(),
                                                           "application/json");
  if (!res) {
    return absl::UnavailableError(
        absl::StrFormat("WebDriver %s %s: %s", method, url, httplib::to_string(res.error())));
  }
  json parsed = json::parse(res->body, nullptr, false);
  if (parsed.is_discarded()) {
    return absl::InternalError(absl::StrFormat("WebDriver %s %s: HTTP %d %s", method, url,
                                               res->status, res->body.substr(0, 200)));
  }
  json value = parsed.contains("value") ? parsed["value"] : json(nullptr);
  if (res->status != 200) return ErrorOf(res->status, value);
  return value;
}

absl::Status WebDriver::Navigate(const std::string& url) {
  return Command("POST", "/url", {{"url", url}}).status();
}

absl::StatusOr<std::string> WebDriver::Find(const std::string& selector) {
  CAMBIUM_ASSIGN_OR_RETURN(
      json v, Command("POST", "/element", {{"using", "css selector"}, {"value", selector}}));
  if (!v.is_object() || !v.contains(kElementKey)) {
    return absl::InternalError("WebDriver answered no element reference: " + v.dump());
  }
  return v[kElementKey].get<std::string>();
}

absl::StatusOr<std::string> WebDriver::WaitFor(const std::string& selector,
                                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<std::string> found = Find(selector);
    if (found.ok() || !absl::IsNotFound(found.status())) return found;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("no element matches \"%s\" after %s",
                                                         selector, absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::Status WebDriver::Click(const std::string& element) {
  return Command("POST", "/element/" + element + "/click", json::object()).status();
}

absl::StatusOr<std::string> WebDriver::Text(const std::string& element) {
  CAMBIUM_ASSIGN_OR_RETURN(json v, Command("GET", "/element/" + element + "/text"));
  return v.is_string() ? v.get<std::string>() : std::string();
}

absl::StatusOr<json> WebDriver::Execute(const std::string& script, json args) {
  return Command("POST", "/execute/sync", {{"script", script}, {"args", std::move(args)}});
}

absl::StatusOr<json> WebDriver::WaitUntil(const std::string& script, absl::Duration timeout,
                                          json args) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    CAMBIUM_ASSIGN_OR_RETURN(json v, Execute(script, args));
    const bool truthy = !v.is_null() && v != false && v != 0 && v != "";
    if (truthy) return v;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrFormat("the page did not get there in %s: %s",
                                                         absl::FormatDuration(timeout), script));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<std::string> WebDriver::Source() {
  CAMBIUM_ASSIGN_OR_RETURN(json v, Command("GET", "/source"));
  return v.is_string() ? v.get<std::string>() : std::string();
}

absl::StatusOr<std::string> WebDriver::Screenshot() {
  CAMBIUM_ASSIGN_OR_RETURN(json v, Command("GET", "/screenshot"));
  std::string png;
  if (!v.is_string() || !absl::Base64Unescape(v.get<std::string>(), &png)) {
    return absl::InternalError("WebDriver sent no screenshot");
  }
  return png;
}

}  // namespace cambium::testing
