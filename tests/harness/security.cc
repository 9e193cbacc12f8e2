#include "tests/harness/security.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "auth/private_file.h"
#include "common/service.h"

namespace cambium::testing {
namespace {

struct TestSecurity {
  std::string file;
  std::string token;
};

const TestSecurity& Get() {
  static const TestSecurity* security = [] {
    char dir[] = "/tmp/cambium-test-secrets-XXXXXX";
    if (mkdtemp(dir) == nullptr) {
      std::perror("mkdtemp for the test service token");
      std::abort();
    }
    auto* s = new TestSecurity{std::string(dir) + "/service.token", ""};
    absl::StatusOr<std::string> token = auth::EnsureSecretFile(s->file, "service");
    if (!token.ok()) {
      std::fprintf(stderr, "test service token: %s\n", token.status().ToString().c_str());
      std::abort();
    }
    s->token = *token;
    ProcessSecurity process = GetProcessSecurity();
    process.client_token = s->token;
    SetProcessSecurity(std::move(process));
    // Removed at exit: the file is tiny, but leaving secrets in /tmp is a bad habit.
    std::atexit([] {
      const TestSecurity& s = Get();
      unlink(s.file.c_str());
      rmdir(s.file.substr(0, s.file.rfind('/')).c_str());
    });
    return s;
  }();
  return *security;
}

}  // namespace

const std::string& TestServiceTokenFile() { return Get().file; }
const std::string& TestServiceToken() { return Get().token; }

}  // namespace cambium::testing
