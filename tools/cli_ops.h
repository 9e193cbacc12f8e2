// Operator commands of the `cambium` CLI that read the machine and the stack's files
// rather than call the pageserver (issue 13 item 4):
//
//   cambium logs [TARGET] [-n N] [-f]   the last N lines of the logs of TARGET: every
//                                        daemon and the supervisor (no TARGET), one
//                                        daemon (pageserver, sk0, ..., supervisor),
//                                        "safekeepers", or an endpoint's name (its
//                                        postgres and shim logs). -f keeps printing
//                                        what is appended, until interrupted. --json:
//                                        {"logs": [{"name", "path", "lines"}]}; with
//                                        -f NDJSON {"name", "line"} per line.
//   cambium doctor                       checks what a stack needs (root, FUSE, the
//                                        postgres user and binaries, Cambium's own
//                                        programs, the data and runtime directories,
//                                        free disk space, the stack's ports) and says
//                                        how to fix each failure; exit 1 if any check
//                                        fails (warnings do not).
//
// Neither takes the data directory's lock while it prints: `logs -f` never blocks
// other commands, and `doctor` answers while a command hangs.
//
// Thread-safety: one call at a time.
#ifndef CAMBIUM_TOOLS_CLI_OPS_H_
#define CAMBIUM_TOOLS_CLI_OPS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/cli.h"
#include "tools/cli_state.h"

namespace cambium::cli {

// The log files of `target` in the data directory `data_dir` (see above); NOT_FOUND
// for a target that is neither a daemon nor an endpoint.
absl::StatusOr<std::vector<LogFile>> LogFilesOf(const std::string& data_dir,
                                                const std::string& target);

// Prints the last `lines` lines of each file (and with `follow`, what is appended
// afterwards, forever). Returns the exit code.
int PrintLogs(const std::vector<LogFile>& files, int lines, bool follow, bool json);

// The checks of `cambium doctor` for the stack found at `where`. The output's
// "ok" is false (and exit_code 1) if a check failed.
Output Doctor(const DataDirLocation& where);

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_CLI_OPS_H_
