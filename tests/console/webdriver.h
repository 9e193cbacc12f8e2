// WebDriver: a real headless Chromium driven through chromedriver's W3C WebDriver
// HTTP API (https://www.w3.org/TR/webdriver2/), for tests of web pages Cambium
// serves (the console, tools/console/). No Python or npm: plain HTTP with httplib.
//
// Start runs chromedriver on a free loopback port and opens one session whose
// Chromium runs headless with a fresh profile and no background networking (this
// machine has no network: Chromium's own connections would be refused). The
// browser is chromedriver's child in chromedriver's process group, so stopping
// that group (the destructor, or pgid() for an exit guard) stops both.
//
// Thread-safety: for one test thread.
#ifndef CAMBIUM_TESTS_CONSOLE_WEBDRIVER_H_
#define CAMBIUM_TESTS_CONSOLE_WEBDRIVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/subprocess.h"
#include "nlohmann/json.hpp"

namespace httplib {
class Client;
}

namespace cambium::testing {

// The programs Debian's chromium and chromium-driver packages install, or nullopt.
std::optional<std::string> FindChromium();
std::optional<std::string> FindChromedriver();

class WebDriver {
 public:
  // `profile_dir`: an empty directory for the browser's profile; `log_file`:
  // chromedriver's (and the browser's) output.
  static absl::StatusOr<std::unique_ptr<WebDriver>> Start(const std::string& chromedriver,
                                                          const std::string& chromium,
                                                          const std::string& profile_dir,
                                                          const std::string& log_file);
  // Ends the session and stops chromedriver and the browser.
  ~WebDriver();
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  // chromedriver's process group (the browser's too).
  int pgid() const { return driver_->pid(); }

  absl::Status Navigate(const std::string& url);
  // The first element matching CSS `selector` (its WebDriver id); NOT_FOUND if none.
  absl::StatusOr<std::string> Find(const std::string& selector);
  // Find, retried until `timeout`; DEADLINE_EXCEEDED names the selector.
  absl::StatusOr<std::string> WaitFor(const std::string& selector,
                                      absl::Duration timeout = absl::Seconds(30));
  absl::Status Click(const std::string& element);
  // The rendered text of an element.
  absl::StatusOr<std::string> Text(const std::string& element);
  // Runs `script` (a function body; `arguments` are `args`) in the page; its result.
  absl::StatusOr<nlohmann::json> Execute(const std::string& script,
                                         nlohmann::json args = nlohmann::json::array());
  // Runs `script` until it returns a truthy value (then that value) or `timeout`.
  absl::StatusOr<nlohmann::json> WaitUntil(const std::string& script, absl::Duration timeout,
                                           nlohmann::json args = nlohmann::json::array());
  // The page's DOM as HTML now.
  absl::StatusOr<std::string> Source();
  // A PNG of the viewport.
  absl::StatusOr<std::string> Screenshot();

 private:
  WebDriver(std::unique_ptr<Subprocess> driver, int port);
  // One WebDriver command: `path` relative to the session once there is one
  // (absolute before); the response's "value", or its error as a Status.
  absl::StatusOr<nlohmann::json> Command(const std::string& method, const std::string& path,
                                         const nlohmann::json& body = nullptr);

  std::unique_ptr<Subprocess> driver_;
  std::unique_ptr<httplib::Client> http_;
  std::string session_;
};

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_CONSOLE_WEBDRIVER_H_
