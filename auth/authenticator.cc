#include "auth/authenticator.h"

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "auth/method_policy.h"
#include "common/logging.h"
#include "common/status.h"

namespace cambium::auth {
namespace {

constexpr char kIdProperty[] = "cambium.token_id";
constexpr char kScopeProperty[] = "cambium.scope";
constexpr char kBranchProperty[] = "cambium.branch_pattern";

std::string_view Value(const grpc::string_ref& ref) { return {ref.data(), ref.size()}; }

absl::Status CheckTokenId(std::string_view token, std::string_view id, std::string_view what) {
  std::optional<ParsedToken> parsed = ParseToken(token);
  if (!parsed || parsed->id != id) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the %s token is not of the form cmb_%s_<secret>", what, id));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<Authenticator>> Authenticator::Create(AuthenticatorOptions options) {
  CAMBIUM_RETURN_IF_ERROR(CheckTokenId(options.service_token, kServiceId, "service"));
  if (!options.admin_token.empty()) {
    CAMBIUM_RETURN_IF_ERROR(CheckTokenId(options.admin_token, kAdminId, "admin"));
  }
  return std::shared_ptr<Authenticator>(new Authenticator(std::move(options)));
}

Authenticator::Authenticator(AuthenticatorOptions options) : options_(std::move(options)) {
  service_hash_ = HashSecret(ParseToken(options_.service_token)->secret);
  if (!options_.admin_token.empty()) {
    admin_hash_ = HashSecret(ParseToken(options_.admin_token)->secret);
  }
  // Only the hashes are kept.
  options_.service_token.clear();
  options_.admin_token.clear();
}

absl::StatusOr<Principal> Authenticator::Authenticate(std::string_view token) const {
  std::optional<ParsedToken> parsed = ParseToken(token);
  if (!parsed) return absl::UnauthenticatedError("invalid token (expected cmb_<id>_<secret>)");
  const std::string hash = HashSecret(parsed->secret);
  if (parsed->id == kServiceId) {
    if (!HashesEqual(hash, service_hash_)) return absl::UnauthenticatedError("invalid token");
    return Principal{.id = std::string(kServiceId), .scope = Scope::kAdmin, .service = true};
  }
  if (parsed->id == kAdminId) {
    if (admin_hash_.empty() || !HashesEqual(hash, admin_hash_)) {
      return absl::UnauthenticatedError("invalid token");
    }
    return Principal{.id = std::string(kAdminId), .scope = Scope::kAdmin};
  }
  if (options_.store == nullptr) return absl::UnauthenticatedError("invalid token");
  return options_.store->Authenticate(*parsed, options_.now());
}

absl::Status Authenticator::Authorize(const Principal& principal, std::string_view full_method) {
  std::optional<Need> need = RequiredFor(full_method);
  // Messages name the RPC ("CreateBranch"), as the CLI's user knows it.
  const std::string_view method = full_method.substr(full_method.rfind('/') + 1);
  if (!need) {
    return absl::PermissionDeniedError(
        absl::StrFormat("%s is not in Cambium's authorization table: refused", full_method));
  }
  if (principal.service) return absl::OkStatus();
  if (*need == Need::kService) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s needs the stack's service credential; API tokens never grant data-path calls", method));
  }
  const Scope scope = *need == Need::kRead      ? Scope::kRead
                      : *need == Need::kDevelop ? Scope::kDevelop
                                                : Scope::kAdmin;
  if (!principal.HasScope(scope)) {
    return absl::PermissionDeniedError(absl::StrFormat("%s needs scope %s; token %s has scope %s",
                                                       method, ScopeName(scope), principal.id,
                                                       ScopeName(principal.scope)));
  }
  return absl::OkStatus();
}

void Authenticator::AuditRefusal(std::string_view method, std::string_view token_id,
                                 std::string_view scope, const absl::Status& s) {
  LogWarning("call_refused", {{"method", method}, {"token_id", token_id}, {"status", s}});
  if (options_.audit == nullptr) return;
  std::string_view action = method.substr(method.rfind('/') + 1);
  (void)options_.audit->Append(AuditRecord{.token_id = std::string(token_id),
                                           .scope = std::string(scope),
                                           .action = std::string(action),
                                           .result = absl::StatusCodeToString(s.code()),
                                           .message = std::string(s.message())});
}

grpc::Status Authenticator::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                    OutputMetadata* consumed_auth_metadata,
                                    OutputMetadata* response_metadata) {
  std::string method;
  if (auto it = auth_metadata.find(":path"); it != auth_metadata.end()) method = Value(it->second);
  std::string_view token;
  if (auto it = auth_metadata.find("authorization"); it != auth_metadata.end()) {
    token = Value(it->second);
    if (absl::StartsWithIgnoreCase(absl::string_view(token.data(), token.size()), "Bearer ")) {
      token.remove_prefix(7);
    }
  }
  std::optional<ParsedToken> parsed = ParseToken(token);
  const std::string token_id = parsed ? parsed->id : "";
  absl::StatusOr<Principal> principal =
      token.empty()
          ? absl::UnauthenticatedError(
                "no bearer token (the CLI reads CAMBIUM_TOKEN, else DATA/secrets/admin.token)")
          : Authenticate(token);
  absl::Status s = principal.ok() ? Authorize(*principal, method) : principal.status();
  if (!s.ok()) {
    AuditRefusal(method, token_id, principal.ok() ? principal->ScopeLabel() : "", s);
    return ToGrpcStatus(s);
  }
  context->AddProperty(kIdProperty, principal->id);
  context->AddProperty(kScopeProperty, principal->ScopeLabel());
  for (const std::string& b : principal->branches) context->AddProperty(kBranchProperty, b);
  context->SetPeerIdentityPropertyName(kIdProperty);
  // The token stays out of the handler's metadata.
  consumed_auth_metadata->insert({"authorization", std::string(token)});
  return grpc::Status::OK;
}

std::optional<Principal> PrincipalOf(const grpc::ServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (!auth) return std::nullopt;
  std::vector<grpc::string_ref> ids = auth->FindPropertyValues(kIdProperty);
  std::vector<grpc::string_ref> scopes = auth->FindPropertyValues(kScopeProperty);
  if (ids.empty() || scopes.empty()) return std::nullopt;
  Principal p;
  p.id = std::string(Value(ids[0]));
  const std::string_view scope = Value(scopes[0]);
  if (scope == "service") {
    p.service = true;
    p.scope = Scope::kAdmin;
  } else {
    absl::StatusOr<Scope> parsed = ParseScope(scope);
    if (!parsed.ok()) return std::nullopt;
    p.scope = *parsed;
  }
  for (const grpc::string_ref& b : auth->FindPropertyValues(kBranchProperty)) {
    p.branches.emplace_back(Value(b));
  }
  return p;
}

}  // namespace cambium::auth
