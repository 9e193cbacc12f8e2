// ManagementServiceImpl: the control plane of the pageserver over gRPC (proto
// ManagementService). A thin mapping onto Repository; errors carry messages a person
// can act on (`NOT_FOUND: branch "preview-42" does not exist in tenant "acme"`).
//
// Access control (docs/security.md): the Authenticator has already checked the
// caller's token and the method's least scope (auth/method_policy.h); the handlers
// add the branch-aware checks: develop-level changes only on unprotected branches
// matching the token's patterns; purge and the owner's credentials of a protected
// branch need admin. Every call, allowed or refused here, is one audit record.
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_
#define CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_

#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "auth/audit_log.h"
#include "auth/token.h"
#include "auth/token_store.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "objstore/object_store.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {

struct ManagementAuth {
  // API tokens; null = no token RPCs. Default: null.
  auth::TokenStore* tokens = nullptr;
  // Where every call is recorded; null = nowhere. Default: null.
  auth::AuditLog* audit = nullptr;
  // Calls must carry a principal (the server has an Authenticator); false only for a
  // library used in one test process. Default: false.
  bool required = false;
};

class ManagementServiceImpl final : public v1::ManagementService::Service {
 public:
  // `import_dir`: PageServerConfig::import_dir.
  explicit ManagementServiceImpl(Repository* repo, ManagementAuth auth = {},
                                 std::string import_dir = "")
      : repo_(repo), auth_(auth), import_dir_(std::move(import_dir)) {}

  // Called after every call that changed metadata (tenants, branches, tokens) and
  // succeeded; the call answers with its status. With an object store it is
  // RemoteHistory::WaitForUpload: a change is acknowledged once off this disk.
  void SetDurabilityHook(std::function<absl::Status()> hook) { durable_ = std::move(hook); }
  // With an object store: a timeline's uploaded archive end (BranchInfo.uploaded_lsn).
  void SetUploadedSource(std::function<Lsn(const TimelineId&)> source) {
    uploaded_ = std::move(source);
  }
  // Tenant moves: the object store transfers go through (shared by the pageservers
  // between which tenants move), a scratch directory on the page store's file system
  // (ingestion moves files from there), and what starts following a timeline's WAL
  // (the WAL receiver). Without a store, moves are refused.
  struct Transfers {
    objstore::ObjectStore* store = nullptr;
    std::string scratch_dir;
    std::function<void(std::shared_ptr<Timeline>)> follow;
  };
  void SetTransfers(Transfers transfers) { transfers_ = std::move(transfers); }

  grpc::Status CreateTenant(grpc::ServerContext*, const v1::CreateTenantRequest*,
                            v1::TenantInfo*) override;
  grpc::Status ListTenants(grpc::ServerContext*, const v1::ListTenantsRequest*,
                           v1::ListTenantsResponse*) override;
  grpc::Status DeleteTenant(grpc::ServerContext*, const v1::DeleteTenantRequest*,
                            v1::DeleteTenantResponse*) override;
  grpc::Status ImportPgdata(grpc::ServerContext*, const v1::ImportPgdataRequest*,
                            v1::BranchInfo*) override;
  grpc::Status CreateBranch(grpc::ServerContext*, const v1::CreateBranchRequest*,
                            v1::BranchInfo*) override;
  grpc::Status GetBranch(grpc::ServerContext*, const v1::GetBranchRequest*,
                         v1::BranchInfo*) override;
  grpc::Status ListBranches(grpc::ServerContext*, const v1::ListBranchesRequest*,
                            v1::ListBranchesResponse*) override;
  grpc::Status DeleteBranch(grpc::ServerContext*, const v1::DeleteBranchRequest*,
                            v1::DeleteBranchResponse*) override;
  grpc::Status UndeleteBranch(grpc::ServerContext*, const v1::UndeleteBranchRequest*,
                              v1::BranchInfo*) override;
  grpc::Status ResetBranch(grpc::ServerContext*, const v1::ResetBranchRequest*,
                           v1::BranchInfo*) override;
  grpc::Status RestoreBranch(grpc::ServerContext*, const v1::RestoreBranchRequest*,
                             v1::RestoreBranchResponse*) override;
  grpc::Status SetProtection(grpc::ServerContext*, const v1::SetProtectionRequest*,
                             v1::BranchInfo*) override;
  grpc::Status GetLsnByTimestamp(grpc::ServerContext*, const v1::GetLsnByTimestampRequest*,
                                 v1::GetLsnByTimestampResponse*) override;
  grpc::Status RunGc(grpc::ServerContext*, const v1::RunGcRequest*, v1::RunGcResponse*) override;
  grpc::Status GetHead(grpc::ServerContext*, const v1::GetHeadRequest*,
                       v1::GetHeadResponse*) override;
  grpc::Status GetCommitHistory(grpc::ServerContext*, const v1::GetCommitHistoryRequest*,
                                v1::GetCommitHistoryResponse*) override;
  grpc::Status ListChanges(grpc::ServerContext*, const v1::ListChangesRequest*,
                           v1::ListChangesResponse*) override;
  grpc::Status CompleteMasking(grpc::ServerContext*, const v1::CompleteMaskingRequest*,
                               v1::BranchInfo*) override;
  grpc::Status ReleaseWriter(grpc::ServerContext*, const v1::ReleaseWriterRequest*,
                             v1::ReleaseWriterResponse*) override;
  grpc::Status GetCredentials(grpc::ServerContext*, const v1::GetCredentialsRequest*,
                              v1::Credentials*) override;

  // management_auth.cc
  grpc::Status CreateToken(grpc::ServerContext*, const v1::CreateTokenRequest*,
                           v1::CreateTokenResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const v1::ListTokensRequest*,
                          v1::ListTokensResponse*) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const v1::RevokeTokenRequest*,
                           v1::TokenInfo*) override;
  grpc::Status ReadAudit(grpc::ServerContext*, const v1::ReadAuditRequest*,
                         v1::ReadAuditResponse*) override;

  // Tenant moves (management_moves.cc).
  grpc::Status ExportTenant(grpc::ServerContext*, const v1::ExportTenantRequest*,
                            v1::ExportTenantResponse*) override;
  grpc::Status AttachTenant(grpc::ServerContext*, const v1::AttachTenantRequest*,
                            v1::AttachTenantResponse*) override;
  grpc::Status FinishTenantMove(grpc::ServerContext*, const v1::FinishTenantMoveRequest*,
                                v1::FinishTenantMoveResponse*) override;

 private:
  // What the audit record of a call names.
  struct Call {
    const char* action = "";  // the RPC's name
    std::string tenant;
    std::string branch;
    std::optional<Lsn> lsn;  // set by the body when the call has one
  };
  using Body = std::function<absl::Status(const auth::Principal&, Call&)>;
  // Runs `body` as the caller of `context`, appends the audit record, maps the status.
  grpc::Status Run(grpc::ServerContext* context, Call call, const Body& body);
  // PERMISSION_DENIED unless `p` may change `branch` at develop level: an admin may;
  // a develop token only on a branch matching its patterns that (with
  // `check_protection`) is not protected.
  absl::Status RequireDevelopOn(const auth::Principal& p, const std::string& tenant,
                                const std::string& branch, bool check_protection = true);
  // PERMISSION_DENIED unless `p` may create or delete `copy`, a read-only copy of
  // `parent` (CreateBranchRequest.read_only_copy): scope read with `parent` among
  // the token's branch patterns.
  absl::Status RequireReadCopyOf(const auth::Principal& p, const std::string& parent,
                                 const std::string& copy);
  // ReleaseWriter: scope read on a read-only copy's parent, develop on the branch
  // (protected or not) otherwise.
  absl::Status ReleaseWriterAllowed(const auth::Principal& p, const std::string& tenant,
                                    const std::string& branch);
  absl::Status RequireTokens() const;
  // Starts following the WAL of the tenant's written timelines (Transfers::follow).
  void FollowTenant(const TenantId& id);

  Repository* const repo_;
  std::function<absl::Status()> durable_;           // set before serving
  std::function<Lsn(const TimelineId&)> uploaded_;  // set before serving
  const ManagementAuth auth_;
  const std::string import_dir_;
  Transfers transfers_;     // set before serving
  std::mutex transfer_mu_;  // one move step at a time
};

// Fills the wire form of a branch.
void ToProto(const RestorableRange& r, v1::RestorableRange* out);
void ToProto(const BranchInfo& info, v1::BranchInfo* out);

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_
