#include "tests/cli/cli_fixture.h"

namespace cambium::testing {

testing::TempDir* CliStackTest::dir_ = nullptr;
testing::ExitGuard* CliStackTest::guard_ = nullptr;

}  // namespace cambium::testing
