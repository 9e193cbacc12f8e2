// ManagementServiceImpl: the audit record of every call, the branch-aware scope
// checks, and the token and audit RPCs (docs/security.md).
#include <algorithm>
#include <iterator>
#include <string_view>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "auth/authenticator.h"
#include "common/logging.h"
#include "common/status.h"
#include "pageserver/management_service.h"

namespace cambium::pageserver {
namespace {

void ToProto(const auth::TokenRecord& r, v1::TokenInfo* out) {
  out->set_id(r.id);
  out->set_scope(static_cast<v1::Scope>(static_cast<int>(r.scope)));
  for (const std::string& b : r.branches) out->add_branches(b);
  out->set_created_unix_micros(absl::ToUnixMicros(r.created));
  out->set_expires_unix_micros(r.expires ? absl::ToUnixMicros(*r.expires) : 0);
  out->set_revoked(r.revoked);
  out->set_description(r.description);
}

}  // namespace

namespace {

// The calls that change what a lost disk would lose (the rest only read, or, like
// ReleaseWriter and RunGc, change what is safe to redo or lose).
bool ChangesMetadata(std::string_view action) {
  constexpr std::string_view kChanging[] = {"CreateTenant",    "DeleteTenant",  "ImportPgdata",
                                            "CreateBranch",    "DeleteBranch",  "UndeleteBranch",
                                            "ResetBranch",     "RestoreBranch", "SetProtection",
                                            "CompleteMasking", "CreateToken",   "RevokeToken",
                                            "AttachTenant",    "FinishTenantMove"};
  return std::find(std::begin(kChanging), std::end(kChanging), action) != std::end(kChanging);
}

}  // namespace

grpc::Status ManagementServiceImpl::Run(grpc::ServerContext* context, Call call, const Body& body) {
  std::optional<auth::Principal> principal = auth::PrincipalOf(*context);
  absl::Status status;
  if (!principal && auth_.required) {
    status = absl::UnauthenticatedError("the call carries no authenticated principal");
  } else {
    // Without an authenticator (one test process) the caller is the stack itself.
    if (!principal) principal = auth::Principal{.id = "local", .service = true};
    status = body(*principal, call);
    if (status.ok() && durable_ && ChangesMetadata(call.action)) status = durable_();
  }
  if (auth_.audit != nullptr) {
    auth::AuditRecord record{.token_id = principal ? principal->id : "",
                             .scope = principal ? principal->ScopeLabel() : "",
                             .action = call.action,
                             .tenant = call.tenant,
                             .branch = call.branch,
                             .result = absl::StatusCodeToString(status.code()),
                             .message = std::string(status.message())};
    if (call.lsn && status.ok()) record.lsn = call.lsn->ToString();
    (void)auth_.audit->Append(record);
  }
  return ToGrpcStatus(status);
}

absl::Status ManagementServiceImpl::RequireDevelopOn(const auth::Principal& p,
                                                     const std::string& tenant,
                                                     const std::string& branch,
                                                     bool check_protection) {
  if (p.HasScope(auth::Scope::kAdmin)) return absl::OkStatus();
  if (!p.HasScope(auth::Scope::kDevelop)) {
    return absl::PermissionDeniedError(
        absl::StrFormat("changing branch \"%s\" needs scope develop; token %s has scope %s", branch,
                        p.id, p.ScopeLabel()));
  }
  if (!p.MayActOnBranch(branch)) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "changing branch \"%s\" needs scope admin: token %s may change only branches matching "
        "%s",
        branch, p.id, absl::StrJoin(p.branches, ", ")));
  }
  if (!check_protection) return absl::OkStatus();
  absl::StatusOr<BranchInfo> b = repo_->DescribeBranch(tenant, branch);
  // A missing branch is the action's own error to report.
  if (b.ok() && b->is_protected) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "branch \"%s\" is protected: changing it needs scope admin; token %s has scope develop",
        branch, p.id));
  }
  return absl::OkStatus();
}

absl::Status ManagementServiceImpl::RequireReadCopyOf(const auth::Principal& p,
                                                      const std::string& parent,
                                                      const std::string& copy) {
  // Scope read is the Authenticator's check (method_policy); the patterns are ours.
  if (p.MayActOnBranch(parent)) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrFormat(
      "the read-only copy \"%s\" of branch \"%s\" needs scope read on \"%s\": token %s may "
      "use only branches matching %s",
      copy, parent, parent, p.id, absl::StrJoin(p.branches, ", ")));
}

absl::Status ManagementServiceImpl::ReleaseWriterAllowed(const auth::Principal& p,
                                                         const std::string& tenant,
                                                         const std::string& branch) {
  absl::StatusOr<BranchInfo> b = repo_->DescribeBranch(tenant, branch);
  if (b.ok() && b->read_only_copy) return RequireReadCopyOf(p, b->parent, branch);
  // Releasing a dead writer changes nothing of the branch's data: develop (on the
  // token's branches) suffices, also on a protected branch.
  return RequireDevelopOn(p, tenant, branch, /*check_protection=*/false);
}

absl::Status ManagementServiceImpl::RequireTokens() const {
  if (auth_.tokens != nullptr && auth_.audit != nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "this pageserver runs without --service-token-file: it has no token store or audit log");
}

grpc::Status ManagementServiceImpl::CreateToken(grpc::ServerContext* ctx,
                                                const v1::CreateTokenRequest* req,
                                                v1::CreateTokenResponse* resp) {
  return Run(ctx, {.action = "CreateToken"}, [&](const auth::Principal&, Call&) -> absl::Status {
    CAMBIUM_RETURN_IF_ERROR(RequireTokens());
    if (req->scope() < v1::SCOPE_READ || req->scope() > v1::SCOPE_ADMIN) {
      return absl::InvalidArgumentError("a token needs a scope: read, develop or admin");
    }
    std::optional<absl::Duration> ttl;
    if (req->ttl_seconds() > 0) ttl = absl::Seconds(req->ttl_seconds());
    CAMBIUM_ASSIGN_OR_RETURN(auth::NewToken t,
                             auth_.tokens->Create(static_cast<auth::Scope>(req->scope()),
                                                  {req->branches().begin(), req->branches().end()},
                                                  ttl, req->description(), absl::Now()));
    ToProto(t.record, resp->mutable_info());
    resp->set_token(t.token);
    LogInfo("token_created", {{"token_id", t.record.id},
                              {"scope", auth::ScopeName(t.record.scope)},
                              {"branches", absl::StrJoin(t.record.branches, ",")}});
    return absl::OkStatus();
  });
}

grpc::Status ManagementServiceImpl::ListTokens(grpc::ServerContext* ctx,
                                               const v1::ListTokensRequest*,
                                               v1::ListTokensResponse* resp) {
  return Run(ctx, {.action = "ListTokens"}, [&](const auth::Principal&, Call&) -> absl::Status {
    CAMBIUM_RETURN_IF_ERROR(RequireTokens());
    for (const auth::TokenRecord& r : auth_.tokens->List()) ToProto(r, resp->add_tokens());
    return absl::OkStatus();
  });
}

grpc::Status ManagementServiceImpl::RevokeToken(grpc::ServerContext* ctx,
                                                const v1::RevokeTokenRequest* req,
                                                v1::TokenInfo* resp) {
  return Run(ctx, {.action = "RevokeToken"}, [&](const auth::Principal&, Call&) -> absl::Status {
    CAMBIUM_RETURN_IF_ERROR(RequireTokens());
    if (req->id() == auth::kAdminId || req->id() == auth::kServiceId) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the %s token comes from a file of the stack (DATA/secrets): replace the file and "
          "restart the stack to change it",
          req->id()));
    }
    CAMBIUM_ASSIGN_OR_RETURN(auth::TokenRecord r, auth_.tokens->Revoke(req->id()));
    ToProto(r, resp);
    LogInfo("token_revoked", {{"token_id", r.id}});
    return absl::OkStatus();
  });
}

grpc::Status ManagementServiceImpl::ReadAudit(grpc::ServerContext* ctx,
                                              const v1::ReadAuditRequest* req,
                                              v1::ReadAuditResponse* resp) {
  return Run(ctx, {.action = "ReadAudit"}, [&](const auth::Principal&, Call&) -> absl::Status {
    CAMBIUM_RETURN_IF_ERROR(RequireTokens());
    const absl::Time since = req->since_unix_micros() > 0
                                 ? absl::FromUnixMicros(req->since_unix_micros())
                                 : absl::InfinitePast();
    CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> records,
                             auth_.audit->Read(since, req->limit()));
    for (std::string& r : records) resp->add_records(std::move(r));
    return absl::OkStatus();
  });
}

}  // namespace cambium::pageserver
