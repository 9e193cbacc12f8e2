#include "tools/cli_usage.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

#ifndef CAMBIUM_VERSION
#define CAMBIUM_VERSION "0.1.0"
#endif

namespace cambium::cli {
namespace {

using nlohmann::json;

std::vector<CLI::App*> Subcommands(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

CLI::App* FindSubcommand(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : Subcommands(app)) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

// A usage error on stderr (one JSON line with `json`); returns 2.
int UsageError(const std::string& message, const std::string& help_command, bool as_json) {
  if (as_json) {
    std::cerr
        << json::object(
               {{"error",
                 {{"code", "INVALID_ARGUMENT"}, {"message", message}, {"help", help_command}}}})
               .dump()
        << "\n";
  } else {
    std::cerr << "cambium: " << message << "\n`" << help_command << "` shows the usage.\n";
  }
  return 2;
}

int PrintHelp(CLI::App& app, CLI::App& command, const std::vector<std::string>& path,
              bool as_json) {
  if (!as_json) {
    std::cout << command.help();
    return 0;
  }
  json subcommands = json::array();
  for (CLI::App* sub : Subcommands(command)) {
    if (sub->get_group().empty()) continue;  // hidden (the supervisor's own)
    subcommands.push_back({{"name", sub->get_name()}, {"description", sub->get_description()}});
  }
  json out = {{"command", absl::StrJoin(path, " ")},
              {"description", command.get_description()},
              {"usage", command.help()},
              {"subcommands", subcommands}};
  if (&command == &app) out["version"] = Version();
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

std::string Version() { return CAMBIUM_VERSION; }

std::vector<std::string> CommandWords(int argc, char** argv) {
  std::vector<std::string> words;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") break;
    words.emplace_back(argv[i]);
  }
  return words;
}

bool HasFlag(const std::vector<std::string>& words, const std::string& flag) {
  return std::find(words.begin(), words.end(), flag) != words.end();
}

std::optional<int> HandleBeforeParse(CLI::App& app, const std::vector<std::string>& words,
                                     const std::vector<std::string>& global_options_with_values,
                                     bool as_json) {
  if (HasFlag(words, "--version")) {
    if (as_json) {
      std::cout << json::object({{"version", Version()}}).dump(2) << "\n";
    } else {
      std::cout << "cambium " << Version() << "\n";
    }
    return 0;
  }
  // Walks the command words down the tree of subcommands, up to a leaf (whose
  // words are its arguments).
  CLI::App* current = &app;
  std::vector<std::string> path = {"cambium"};
  bool help = false;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w.rfind("-", 0) == 0) {
      if (HasFlag(global_options_with_values, w)) ++i;  // its value
      continue;
    }
    if (Subcommands(*current).empty()) break;  // a leaf: the rest are its arguments
    if (!help && current == &app && w == "help") {
      help = true;
      continue;
    }
    CLI::App* sub = FindSubcommand(*current, w);
    if (sub == nullptr) {
      // path is {"cambium", words so far...}
      const std::string known = absl::StrJoin(path.begin() + 1, path.end(), " ");
      const std::string asked = known.empty() ? w : known + " " + w;
      return UsageError(absl::StrFormat("unknown command '%s'", asked),
                        known.empty() ? "cambium help" : "cambium help " + known, as_json);
    }
    current = sub;
    path.push_back(w);
  }
  if (help) return PrintHelp(app, *current, path, as_json);
  return std::nullopt;
}

nlohmann::json ErrorJson(const absl::Status& status) {
  json error = {{"code", absl::StatusCodeToString(status.code())},
                {"message", std::string(status.message())}};
  if (auto payload = status.GetPayload(kErrorDetailsPayload)) {
    json details = json::parse(std::string(*payload), nullptr, /*allow_exceptions=*/false);
    if (details.is_object()) {
      for (const auto& [key, value] : details.items()) {
        if (!error.contains(key)) error[key] = value;
      }
    }
  }
  return {{"error", error}};
}

int ReportParseError(CLI::App& app, const CLI::ParseError& e, bool as_json) {
  if (e.get_exit_code() == 0) return app.exit(e);  // --help
  return UsageError(e.what(), "cambium help", as_json);
}

}  // namespace cambium::cli
