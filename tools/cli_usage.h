// The part of the `cambium` CLI contract that comes before any command runs
// (issue 13 item 4): `--version`, `help [COMMAND...]`, unknown commands and usage
// errors. With --json each of them prints one JSON document too, so a script never
// has to parse text:
//
//   cambium --version [--json]        "cambium 0.1.0" / {"version": "0.1.0"}; exit 0
//   cambium help [COMMAND...] [--json] the command's help / {"command", "description",
//                                      "usage", "subcommands": [...]}; exit 0
//   cambium frobnicate [--json]       "unknown command" on stderr / {"error": {...}}; exit 2
//   any other usage error             the same shape; exit 2
//
// Usage errors are {"error": {"code": "INVALID_ARGUMENT", "message", "usage"}} on
// stderr, the same object runtime errors use (with their own code; exit 1).
//
// Thread-safety: stateless functions over a built (not yet parsed) CLI11 app.
#ifndef CAMBIUM_TOOLS_CLI_USAGE_H_
#define CAMBIUM_TOOLS_CLI_USAGE_H_

#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace cambium::cli {

// The version this binary was built as.
std::string Version();

// The words of `argv` after the program name, up to a `--` (SQL after it is not
// ours to read).
std::vector<std::string> CommandWords(int argc, char** argv);
// True if `flag` (e.g. "--json") is among `words`.
bool HasFlag(const std::vector<std::string>& words, const std::string& flag);

// Handles --version, `help ...` and unknown commands before CLI11 parses: returns
// the exit code if one of them applied (its output printed), nullopt otherwise.
// `global_options_with_values` are options of `app` that take a value (their value
// is not a command word), e.g. {"--data-dir", "--tenant"}.
std::optional<int> HandleBeforeParse(CLI::App& app, const std::vector<std::string>& words,
                                     const std::vector<std::string>& global_options_with_values,
                                     bool json);

// Error details a command attaches to its Status (absl::Status::SetPayload with this
// type URL, a JSON object, e.g. an SQL error's {"sqlstate", "position"}): merged
// into the error object --json prints.
inline constexpr char kErrorDetailsPayload[] = "type.cambium.dev/ErrorDetails";
// {"error": {"code", "message", details...}} of a failed command.
nlohmann::json ErrorJson(const absl::Status& status);

// Prints a usage error (as JSON with `json`) and returns 2; --help and friends
// print the help and return 0.
int ReportParseError(CLI::App& app, const CLI::ParseError& e, bool json);

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_CLI_USAGE_H_
