// Cli: the stack's secrets, the token the CLI calls with, API tokens and the audit
// log (docs/security.md).
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "auth/private_file.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

std::string ScopeText(v1::Scope scope) {
  switch (scope) {
    case v1::SCOPE_READ:
      return "read";
    case v1::SCOPE_DEVELOP:
      return "develop";
    case v1::SCOPE_ADMIN:
      return "admin";
    default:
      return "unspecified";
  }
}

json TokenJson(const v1::TokenInfo& t) {
  json branches = json::array();
  for (const std::string& b : t.branches()) branches.push_back(b);
  return {{"id", t.id()},
          {"scope", ScopeText(t.scope())},
          {"branches", branches},
          {"created", FormatTimestamp(absl::FromUnixMicros(t.created_unix_micros()))},
          {"expires", t.expires_unix_micros() == 0
                          ? json(nullptr)
                          : json(FormatTimestamp(absl::FromUnixMicros(t.expires_unix_micros())))},
          {"revoked", t.revoked()},
          {"description", t.description()}};
}

std::string TokenLine(const json& t) {
  std::string branches = t["branches"].empty() ? "*" : "";
  for (const auto& b : t["branches"]) {
    absl::StrAppend(&branches, branches.empty() ? "" : ",", b.get<std::string>());
  }
  std::string state = t["revoked"].get<bool>() ? "revoked"
                      : t["expires"].is_null()
                          ? "no expiry"
                          : absl::StrCat("expires ", t["expires"].get<std::string>());
  return absl::StrFormat("%-14s %-8s %-20s %-32s %s\n", t["id"].get<std::string>(),
                         t["scope"].get<std::string>(), branches, state,
                         t["description"].get<std::string>());
}

}  // namespace

absl::Status Cli::EnsureSecrets() {
  std::error_code ec;
  std::filesystem::create_directories(dir_.Sub("secrets"), ec);
  if (ec) return absl::InternalError("create " + dir_.Sub("secrets") + ": " + ec.message());
  if (chmod(dir_.Sub("secrets").c_str(), 0700) != 0) {
    return ErrnoToStatus(errno, "chmod 700 " + dir_.Sub("secrets"));
  }
  CAMBIUM_RETURN_IF_ERROR(auth::EnsureSecretFile(ServiceTokenFile(), "service").status());
  return auth::EnsureSecretFile(AdminTokenFile(), "admin").status();
}

void Cli::UseApiToken() {
  ProcessSecurity security = GetProcessSecurity();
  const char* env = std::getenv("CAMBIUM_TOKEN");
  if (env != nullptr && *env != '\0') {
    security.client_token = env;
  } else {
    // Before the first `up` there is none; the pageserver then refuses with a message
    // that names both places.
    absl::StatusOr<std::string> admin = auth::ReadSecretFile(AdminTokenFile());
    security.client_token = admin.ok() ? *admin : "";
  }
  SetProcessSecurity(std::move(security));
  mgmt_.reset();
}

absl::StatusOr<Output> Cli::TokenCreate(const TokenCreateArgs& args) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::CreateTokenRequest req;
  if (args.scope == "read") {
    req.set_scope(v1::SCOPE_READ);
  } else if (args.scope == "develop") {
    req.set_scope(v1::SCOPE_DEVELOP);
  } else if (args.scope == "admin") {
    req.set_scope(v1::SCOPE_ADMIN);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "unknown scope \"%s\": expected --scope read, develop or admin", args.scope));
  }
  for (const std::string& b : args.branches) req.add_branches(b);
  if (args.ttl) {
    CAMBIUM_ASSIGN_OR_RETURN(absl::Duration ttl, ParseHumanDuration(*args.ttl));
    if (ttl < absl::Seconds(1)) return absl::InvalidArgumentError("--ttl must be at least 1s");
    req.set_ttl_seconds(absl::ToInt64Seconds(ttl));
  }
  req.set_description(args.description);
  CAMBIUM_ASSIGN_OR_RETURN(v1::CreateTokenResponse resp,
                           ControlCall(mgmt(), &v1::ManagementService::Stub::CreateToken, req));
  Output out;
  out.json = TokenJson(resp.info());
  out.json["token"] = resp.token();
  out.text = absl::StrFormat(
      "Token %s (scope %s). Its secret is shown once; keep it safe:\n%s\n"
      "Use it with: export CAMBIUM_TOKEN=<token>\n",
      resp.info().id(), ScopeText(resp.info().scope()), resp.token());
  return out;
}

absl::StatusOr<Output> Cli::TokenList() {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  CAMBIUM_ASSIGN_OR_RETURN(
      v1::ListTokensResponse resp,
      ControlCall(mgmt(), &v1::ManagementService::Stub::ListTokens, v1::ListTokensRequest()));
  Output out;
  out.json = {{"tokens", json::array()}};
  out.text = absl::StrFormat("%-14s %-8s %-20s %-32s %s\n", "ID", "SCOPE", "BRANCHES", "STATE",
                             "DESCRIPTION");
  for (const v1::TokenInfo& t : resp.tokens()) {
    out.json["tokens"].push_back(TokenJson(t));
    out.text += TokenLine(out.json["tokens"].back());
  }
  return out;
}

absl::StatusOr<Output> Cli::TokenRevoke(const std::string& id) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::RevokeTokenRequest req;
  req.set_id(id);
  CAMBIUM_ASSIGN_OR_RETURN(v1::TokenInfo resp,
                           ControlCall(mgmt(), &v1::ManagementService::Stub::RevokeToken, req));
  Output out;
  out.json = TokenJson(resp);
  out.text = absl::StrFormat("Token %s is revoked: every call with it is refused from now on.\n",
                             resp.id());
  return out;
}

absl::StatusOr<Output> Cli::Audit(std::optional<std::string> since) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::ReadAuditRequest req;
  if (since) {
    CAMBIUM_ASSIGN_OR_RETURN(absl::Time t, ParseTimestamp(*since));
    req.set_since_unix_micros(absl::ToUnixMicros(t));
  }
  CAMBIUM_ASSIGN_OR_RETURN(v1::ReadAuditResponse resp,
                           ControlCall(mgmt(), &v1::ManagementService::Stub::ReadAudit, req));
  Output out;
  out.json = {{"records", json::array()}};
  for (const std::string& r : resp.records()) {
    json j = json::parse(r, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;
    out.json["records"].push_back(j);
    std::string where = j.value("branch", "");
    if (!j.value("tenant", "").empty()) where = j.value("tenant", "") + "/" + where;
    out.text += absl::StrFormat("%s %-14s %-8s %-18s %-24s %s%s\n", j.value("time", ""),
                                j.value("token_id", "-"), j.value("scope", "-"),
                                j.value("action", ""), where, j.value("result", ""),
                                j.contains("lsn") ? " lsn=" + j.value("lsn", "") : "");
  }
  return out;
}

}  // namespace cambium::cli
