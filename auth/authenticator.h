// Authenticator: gRPC's server-side hook (AuthMetadataProcessor) that authenticates
// the bearer token of every call and enforces the authorization table
// (method_policy.h) before any handler runs.
//
// For each call: the method must be in the table (else PERMISSION_DENIED); the
// "authorization: Bearer <token>" metadata must name the stack's service credential,
// the admin token (from --admin-token-file) or a live token of the TokenStore (else
// UNAUTHENTICATED); the principal must satisfy the method's requirement (else
// PERMISSION_DENIED "... needs scope develop ..."). The principal is then put into the
// call's auth context, where handlers read it with PrincipalOf. Refusals are written
// to the audit log when there is one; secrets never are, nor logged.
//
// Only hashes of the service and admin tokens are kept. Process() is non-blocking
// (an in-memory lookup, and an append to the audit log on refusal), so gRPC calls it
// inline on its own threads.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_AUTH_AUTHENTICATOR_H_
#define CAMBIUM_AUTH_AUTHENTICATOR_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "auth/audit_log.h"
#include "auth/token.h"
#include "auth/token_store.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "grpcpp/server_context.h"

namespace cambium::auth {

struct AuthenticatorOptions {
  // The stack's service token (required). Default: "".
  std::string service_token;
  // The admin token; "" = none. Default: "".
  std::string admin_token;
  // User tokens; null = none (safekeepers accept the service token only). Default: null.
  const TokenStore* store = nullptr;
  // Where refusals are recorded; null = only the process log. Default: null.
  AuditLog* audit = nullptr;
  // The clock expiry is checked against. Default: absl::Now.
  std::function<absl::Time()> now = absl::Now;
};

class Authenticator final : public grpc::AuthMetadataProcessor {
 public:
  // INVALID_ARGUMENT if a token is not "cmb_<id>_<secret>" with the right id.
  static absl::StatusOr<std::shared_ptr<Authenticator>> Create(AuthenticatorOptions options);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // The principal of a token (the whole "cmb_..." text); UNAUTHENTICATED if none.
  absl::StatusOr<Principal> Authenticate(std::string_view token) const;
  // OK if `principal` may call `full_method`; PERMISSION_DENIED saying what it needs.
  static absl::Status Authorize(const Principal& principal, std::string_view full_method);

 private:
  explicit Authenticator(AuthenticatorOptions options);
  void AuditRefusal(std::string_view method, std::string_view token_id, std::string_view scope,
                    const absl::Status& s);

  AuthenticatorOptions options_;
  std::string service_hash_;
  std::string admin_hash_;
};

// The principal the Authenticator attached to this call; nullopt if the server has
// no Authenticator (a library used in one test process without security).
std::optional<Principal> PrincipalOf(const grpc::ServerContext& context);

}  // namespace cambium::auth

#endif  // CAMBIUM_AUTH_AUTHENTICATOR_H_
