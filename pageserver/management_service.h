// ManagementServiceImpl: the control plane of the pageserver over gRPC (proto
// ManagementService). A thin mapping onto Repository; errors carry messages a person
// can act on (`NOT_FOUND: branch "preview-42" does not exist in tenant "acme"`).
//
// Thread-safety: thread-safe.
#ifndef CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_
#define CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_

#include "cambium/v1/management_service.grpc.pb.h"
#include "pageserver/repository.h"

namespace cambium::pageserver {

class ManagementServiceImpl final : public v1::ManagementService::Service {
 public:
  // `import_dir`: PageServerConfig::import_dir.
  explicit ManagementServiceImpl(Repository* repo, std::string import_dir = "")
      : repo_(repo), import_dir_(std::move(import_dir)) {}

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
  grpc::Status ReleaseWriter(grpc::ServerContext*, const v1::ReleaseWriterRequest*,
                             v1::ReleaseWriterResponse*) override;
  // The owner's or the read-only role's password of a branch (never logged).
  grpc::Status GetCredentials(grpc::ServerContext*, const v1::GetCredentialsRequest*,
                              v1::Credentials*) override;

 private:
  Repository* const repo_;
  const std::string import_dir_;
};

// Fills the wire form of a branch.
void ToProto(const BranchInfo& info, v1::BranchInfo* out);

}  // namespace cambium::pageserver

#endif  // CAMBIUM_PAGESERVER_MANAGEMENT_SERVICE_H_
