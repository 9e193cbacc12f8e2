// ConsoleApi: the JSON the console's page reads (GET /api/..., console_server.h),
// computed with the CLI's own machinery (tools/cli.h) and the pageserver's
// GetCommitHistory. Read-only: nothing here changes a branch, an endpoint or a token.
//
//   Branches()    the live branches (no trash, no internal copies): parent, branch
//                 LSN, head, created, sizes, protection, expiry
//   History(B)    B's commits per bucket over its restorable window (~`buckets`
//                 buckets), with the restorable range and the PITR window
//   Endpoints()   name, branch, port, read-only, follow, state, restarts, and a
//                 follower's replay lag
//   Tables(B, T)  the tables of B as of time T
//   Preview(B, T, TABLE, N)  the first N rows of TABLE ("schema.name") as of T
//
// Secrets never leave: the CLI's JSON is copied field by field (no connection
// string, password, socket path or maintenance URL). Tables and previews run
// `cambium query` (Cli::Query: an ephemeral read-only copy at T, a hot standby);
// the table's name is checked against a whitelist and quoted as an identifier,
// never pasted raw into SQL.
//
// Every call opens a Cli (taking the data directory's lock) and drops it before it
// returns: the console holds no lock while idle, and other commands wait for at
// most one call.
//
// Thread-safety: thread-safe; Cli calls are serialized (one at a time per process).
#ifndef CAMBIUM_TOOLS_CONSOLE_CONSOLE_API_H_
#define CAMBIUM_TOOLS_CONSOLE_CONSOLE_API_H_

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/cli.h"

namespace cambium::console {

// Rows a preview may ask for.
inline constexpr int kMaxPreviewRows = 100;

// "schema.name" (or "name", meaning public) as a quoted SQL identifier pair:
// "schema"."name". Each part is 1-63 bytes of ASCII letters, digits, '_', '$', '-',
// ' ' or UTF-8 beyond ASCII; anything else (quotes, dots inside a part, control
// characters) is INVALID_ARGUMENT.
absl::StatusOr<std::string> QuoteTableName(std::string_view table);

class ConsoleApi {
 public:
  // `data_dir`: the stack's directory; `tenant`: "" = the stack's own.
  ConsoleApi(std::string data_dir, std::string tenant);

  // Opens the stack once (NOT_FOUND without one) and sets the token this process
  // calls with ($CAMBIUM_TOKEN, else the stack's admin token: Cli::Open).
  absl::Status Check();

  absl::StatusOr<nlohmann::json> Branches();
  absl::StatusOr<nlohmann::json> History(const std::string& branch, int buckets);
  absl::StatusOr<nlohmann::json> Endpoints();
  absl::StatusOr<nlohmann::json> Tables(const std::string& branch, const std::string& at);
  absl::StatusOr<nlohmann::json> Preview(const std::string& branch, const std::string& at,
                                         const std::string& table, int limit);

 private:
  // Runs `fn` (returning a Status or StatusOr) on a Cli opened for it (which also
  // sets the token this process calls with); its lock is released when it returns.
  template <typename Fn>
  auto WithCli(Fn fn) -> decltype(fn(std::declval<cli::Cli&>())) {
    std::lock_guard<std::mutex> lock(cli_mu_);
    absl::StatusOr<std::unique_ptr<cli::Cli>> c =
        cli::Cli::Open(data_dir_, tenant_, /*create=*/false);
    if (!c.ok()) return c.status();
    return fn(**c);
  }

  const std::string data_dir_;
  const std::string tenant_;
  std::mutex cli_mu_;  // one Cli at a time: they share the process's token
};

}  // namespace cambium::console

#endif  // CAMBIUM_TOOLS_CONSOLE_CONSOLE_API_H_
