#include "tests/harness/promtool.h"

#include <unistd.h>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/status.h"
#include "common/subprocess.h"
#include "tests/harness/exit_guard.h"
#include "tests/harness/temp_dir.h"

namespace cambium::testing {

bool HavePromtool() { return access(kPromtool, X_OK) == 0; }

absl::Status PromtoolCheckMetrics(const std::string& exposition) {
  CAMBIUM_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("cambium-promtool-"));
  const std::string body = dir.Sub("metrics.txt");
  CAMBIUM_RETURN_IF_ERROR(WriteFileAtomically(body, exposition));
  CAMBIUM_ASSIGN_OR_RETURN(
      CommandResult r,
      RunCommand({.argv = {"/bin/sh", "-c",
                           absl::StrFormat("%s check metrics < %s", kPromtool, ShellQuote(body))}},
                 absl::Seconds(60)));
  // promtool exits 0 with no output when the body parses and lints clean.
  if (r.exit_code != 0 || !r.out.empty() || !r.err.empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("promtool check metrics: exit %d\n%s%s", r.exit_code, r.out, r.err));
  }
  return absl::OkStatus();
}

}  // namespace cambium::testing
