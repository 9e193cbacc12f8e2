// The service credential of a test process's stack: one token per test process, in a
// 0600 file, passed to every daemon the harness starts (--service-token-file) and set
// as this process's client token so that its own channels authenticate as the stack.
//
// Thread-safety: thread-safe (created once).
#ifndef CAMBIUM_TESTS_HARNESS_SECURITY_H_
#define CAMBIUM_TESTS_HARNESS_SECURITY_H_

#include <string>

namespace cambium::testing {

// The path of the token file; on the first call it is created and the process
// security's client token set (dies if that fails: no test can run without it).
const std::string& TestServiceTokenFile();
// The token itself.
const std::string& TestServiceToken();

}  // namespace cambium::testing

#endif  // CAMBIUM_TESTS_HARNESS_SECURITY_H_
