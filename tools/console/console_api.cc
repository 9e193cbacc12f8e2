#include "tools/console/console_api.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/lsn.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli_state.h"
#include "tools/cli_util.h"

namespace cambium::console {
namespace {

using nlohmann::json;

// What the page may show of `cambium branch list --json` and `endpoint list --json`;
// everything else (connection strings with passwords, sockets, pids, logs) stays out.
constexpr const char* kBranchFields[] = {
    "name",    "parent",    "branch_lsn",         "last_record_lsn",  "created",
    "expires", "protected", "logical_size_bytes", "unique_size_bytes"};
constexpr const char* kEndpointFields[] = {
    "name",      "branch",     "port",      "read_only",         "follow", "state", "restarts",
    "last_exit", "replay_lsn", "lag_bytes", "replay_lag_seconds"};

// User tables, views and materialized views, as of the query's time.
constexpr char kTablesSql[] =
    "SELECT n.nspname AS schema, c.relname AS name FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'v', 'm') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2 LIMIT 1000";

template <size_t N>
json Pick(const json& from, const char* const (&fields)[N]) {
  json out = json::object();
  for (const char* f : fields) out[f] = from.contains(f) ? from[f] : json(nullptr);
  return out;
}

bool IdentifierPartOk(std::string_view part) {
  if (part.empty() || part.size() > 63) return false;
  for (unsigned char c : part) {
    const bool ascii_word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '-' || c == ' ';
    if (!ascii_word && c < 0x80) return false;
  }
  return true;
}

std::string TimeJson(int64_t unix_micros) {
  return cli::FormatTimestamp(absl::FromUnixMicros(unix_micros));
}

absl::Status CheckTime(const std::string& at) { return cli::ParseTimestamp(at).status(); }

}  // namespace

absl::StatusOr<std::string> QuoteTableName(std::string_view table) {
  std::string_view schema = "public";
  std::string_view name = table;
  if (const size_t dot = table.find('.'); dot != std::string_view::npos) {
    schema = table.substr(0, dot);
    name = table.substr(dot + 1);
  }
  if (!IdentifierPartOk(schema) || !IdentifierPartOk(name)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cannot preview table \"%s\": expected SCHEMA.NAME, each part 1-63 letters, digits, "
        "'_', '$', '-' or spaces",
        absl::CHexEscape(std::string(table.substr(0, 200)))));
  }
  // Every character left is plain inside a quoted identifier: no quote can end it.
  return absl::StrFormat("\"%s\".\"%s\"", schema, name);
}

ConsoleApi::ConsoleApi(std::string data_dir, std::string tenant)
    : data_dir_(std::move(data_dir)), tenant_(std::move(tenant)) {}

absl::Status ConsoleApi::Check() {
  return WithCli([](cli::Cli&) { return absl::OkStatus(); });
}

absl::StatusOr<json> ConsoleApi::Branches() {
  CAMBIUM_ASSIGN_OR_RETURN(cli::StackState stack, cli::LoadStackFile(data_dir_ + "/stack.json"));
  CAMBIUM_ASSIGN_OR_RETURN(json listed, WithCli([](cli::Cli& c) -> absl::StatusOr<json> {
                             CAMBIUM_ASSIGN_OR_RETURN(cli::Output out, c.BranchList());
                             return out.json;
                           }));
  json branches = json::array();
  for (const json& b : listed) branches.push_back(Pick(b, kBranchFields));
  return json{{"tenant", tenant_.empty() ? stack.tenant : tenant_},
              {"now", cli::FormatTimestamp(absl::Now())},
              {"branches", branches}};
}

absl::StatusOr<json> ConsoleApi::Endpoints() {
  CAMBIUM_ASSIGN_OR_RETURN(json listed, WithCli([](cli::Cli& c) -> absl::StatusOr<json> {
                             CAMBIUM_ASSIGN_OR_RETURN(cli::Output out, c.EndpointList());
                             return out.json;
                           }));
  json endpoints = json::array();
  for (const json& e : listed) endpoints.push_back(Pick(e, kEndpointFields));
  return json{{"endpoints", endpoints}};
}

absl::StatusOr<json> ConsoleApi::History(const std::string& branch, int buckets) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", branch));
  buckets = std::clamp(buckets, 10, 1000);
  const absl::Time now = absl::Now();
  int64_t width = 1;
  CAMBIUM_ASSIGN_OR_RETURN(
      v1::GetCommitHistoryResponse h,
      WithCli([&](cli::Cli& c) -> absl::StatusOr<v1::GetCommitHistoryResponse> {
        // The restorable range and the PITR window come with the branch.
        CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo info, c.GetBranch(branch));
        const v1::RestorableRange& range = info.restorable();
        // The window: what can still be restored, at most the PITR window, at least
        // 10 s; whole seconds, so that bucket edges fall on seconds.
        absl::Time from = now - absl::Seconds(range.pitr_window_seconds());
        if (range.earliest_unix_micros() != 0) {
          from = std::max(from, absl::FromUnixMicros(range.earliest_unix_micros()));
        }
        from = std::min(from, now - absl::Seconds(10));
        from = absl::FromUnixSeconds(absl::ToUnixSeconds(from));
        const int64_t span = absl::ToInt64Seconds(now - from) + 1;
        width = std::max<int64_t>(1, (span + buckets - 1) / buckets);
        const absl::Time to = from + absl::Seconds(width * ((span + width - 1) / width));
        v1::GetCommitHistoryRequest req;
        req.set_branch(branch);
        req.set_from_unix_micros(absl::ToUnixMicros(from));
        req.set_to_unix_micros(absl::ToUnixMicros(to));
        req.set_bucket_seconds(static_cast<uint32_t>(width));
        return c.CommitHistory(req);
      }));
  const v1::RestorableRange& r = h.restorable();

  json out_buckets = json::array();
  for (const v1::CommitBucket& b : h.buckets()) {
    // A bucket whose last commit is below the earliest point cannot be restored to.
    const bool restorable = b.last_lsn() >= r.earliest_lsn() && r.earliest_unix_micros() != 0 &&
                            b.last_commit_unix_micros() >= r.earliest_unix_micros();
    out_buckets.push_back({{"start", TimeJson(b.start_unix_micros())},
                           {"start_unix_micros", b.start_unix_micros()},
                           {"commits", b.commits()},
                           {"first_lsn", Lsn(b.first_lsn()).ToString()},
                           {"last_lsn", Lsn(b.last_lsn()).ToString()},
                           {"last_commit", TimeJson(b.last_commit_unix_micros())},
                           {"last_commit_unix_micros", b.last_commit_unix_micros()},
                           {"restorable", restorable}});
  }
  return json{{"branch", branch},
              {"now", cli::FormatTimestamp(now)},
              {"from", TimeJson(h.from_unix_micros())},
              {"from_unix_micros", h.from_unix_micros()},
              {"to", TimeJson(h.to_unix_micros())},
              {"to_unix_micros", h.to_unix_micros()},
              {"bucket_seconds", width},
              {"buckets", out_buckets},
              {"truncated", h.truncated()},
              {"counted_to", cli::MicrosOrNull(h.truncated() ? h.counted_to_unix_micros() : 0)},
              {"pitr_window_seconds", r.pitr_window_seconds()},
              {"restorable",
               {{"earliest_lsn", Lsn(r.earliest_lsn()).ToString()},
                {"earliest", cli::MicrosOrNull(r.earliest_unix_micros())},
                {"earliest_unix_micros", r.earliest_unix_micros()},
                {"latest_lsn", Lsn(r.latest_lsn()).ToString()},
                {"latest_commit", cli::MicrosOrNull(r.latest_commit_unix_micros())}}}};
}

absl::StatusOr<json> ConsoleApi::Tables(const std::string& branch, const std::string& at) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", branch));
  CAMBIUM_RETURN_IF_ERROR(CheckTime(at));
  CAMBIUM_ASSIGN_OR_RETURN(json result, WithCli([&](cli::Cli& c) -> absl::StatusOr<json> {
                             CAMBIUM_ASSIGN_OR_RETURN(cli::Output out,
                                                      c.Query(branch, at, kTablesSql));
                             return out.json;
                           }));
  json tables = json::array();
  for (const json& row : result.value("rows", json::array())) {
    tables.push_back({{"schema", row.value("schema", "")}, {"name", row.value("name", "")}});
  }
  return json{{"branch", branch}, {"at", at}, {"lsn", result.value("lsn", "")}, {"tables", tables}};
}

absl::StatusOr<json> ConsoleApi::Preview(const std::string& branch, const std::string& at,
                                         const std::string& table, int limit) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", branch));
  CAMBIUM_RETURN_IF_ERROR(CheckTime(at));
  CAMBIUM_ASSIGN_OR_RETURN(std::string quoted, QuoteTableName(table));
  if (limit < 1 || limit > kMaxPreviewRows) {
    return absl::InvalidArgumentError(
        absl::StrFormat("limit must be 1 to %d rows, not %d", kMaxPreviewRows, limit));
  }
  const std::string sql = absl::StrFormat("SELECT * FROM %s LIMIT %d", quoted, limit);
  CAMBIUM_ASSIGN_OR_RETURN(json result, WithCli([&](cli::Cli& c) -> absl::StatusOr<json> {
                             CAMBIUM_ASSIGN_OR_RETURN(cli::Output out, c.Query(branch, at, sql));
                             return out.json;
                           }));
  return json{{"branch", branch},
              {"at", at},
              {"table", table},
              {"sql", sql},
              {"lsn", result.value("lsn", "")},
              {"columns", result.value("columns", json::array())},
              {"rows", result.value("rows", json::array())},
              {"row_count", result.value("row_count", 0)}};
}

}  // namespace cambium::console
