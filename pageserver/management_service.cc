#include "pageserver/management_service.h"

#include "common/pg_roles.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "pageserver/import.h"

namespace cambium::pageserver {
namespace {

void ToProto(const TenantInfo& t, v1::TenantInfo* out) {
  out->set_name(t.name);
  cambium::ToProto(t.id, out->mutable_tenant_id());
  out->set_pitr_window_seconds(absl::ToInt64Seconds(t.pitr_window));
}

template <typename Request>
BranchPoint PointOf(const Request& req) {
  BranchPoint point;
  if (req.point_case() == Request::kLsn) point.lsn = Lsn(req.lsn());
  if (req.point_case() == Request::kAtUnixMicros)
    point.time = absl::FromUnixMicros(req.at_unix_micros());
  return point;
}

}  // namespace

void ToProto(const BranchInfo& info, v1::BranchInfo* out) {
  out->set_tenant(info.tenant);
  out->set_name(info.name);
  cambium::ToProto(info.tenant_id, out->mutable_tenant_id());
  cambium::ToProto(info.timeline_id, out->mutable_timeline_id());
  out->set_parent(info.parent);
  if (info.ancestor_timeline)
    cambium::ToProto(*info.ancestor_timeline, out->mutable_ancestor_timeline_id());
  out->set_ancestor_lsn(info.ancestor_lsn.value());
  out->set_last_record_lsn(info.last_record_lsn.value());
  out->set_state(v1::TIMELINE_STATE_ACTIVE);
  out->set_created_unix_micros(absl::ToUnixMicros(info.created));
  out->set_protected_(info.is_protected);
  out->set_expires_unix_micros(info.expires ? absl::ToUnixMicros(*info.expires) : 0);
  out->set_logical_size_bytes(info.logical_size);
  out->set_unique_size_bytes(info.unique_size);
  out->set_unique_wal_bytes(info.unique_wal_bytes);
}

grpc::Status ManagementServiceImpl::CreateTenant(grpc::ServerContext*,
                                                 const v1::CreateTenantRequest* req,
                                                 v1::TenantInfo* resp) {
  auto t = repo_->CreateTenant(req->name(), absl::Seconds(req->pitr_window_seconds()));
  if (!t.ok()) return ToGrpcStatus(t.status());
  ToProto(*t, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::ListTenants(grpc::ServerContext*, const v1::ListTenantsRequest*,
                                                v1::ListTenantsResponse* resp) {
  for (const TenantInfo& t : repo_->ListTenants()) ToProto(t, resp->add_tenants());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::DeleteTenant(grpc::ServerContext*,
                                                 const v1::DeleteTenantRequest* req,
                                                 v1::DeleteTenantResponse*) {
  return ToGrpcStatus(repo_->DeleteTenant(req->tenant()));
}

grpc::Status ManagementServiceImpl::ImportPgdata(grpc::ServerContext*,
                                                 const v1::ImportPgdataRequest* req,
                                                 v1::BranchInfo* resp) {
  auto b = pageserver::ImportPgdata(*repo_, req->tenant(), req->branch(), req->pgdata_path(),
                                    import_dir_);
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::CreateBranch(grpc::ServerContext*,
                                                 const v1::CreateBranchRequest* req,
                                                 v1::BranchInfo* resp) {
  std::optional<absl::Duration> ttl;
  if (req->ttl_seconds() > 0) ttl = absl::Seconds(req->ttl_seconds());
  auto b = repo_->CreateBranch(req->tenant(), req->name(), req->parent(), PointOf(*req), ttl);
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::GetBranch(grpc::ServerContext*, const v1::GetBranchRequest* req,
                                              v1::BranchInfo* resp) {
  auto b = repo_->GetBranch(req->tenant(), req->name());
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::ListBranches(grpc::ServerContext*,
                                                 const v1::ListBranchesRequest* req,
                                                 v1::ListBranchesResponse* resp) {
  auto branches = repo_->ListBranches(req->tenant());
  if (!branches.ok()) return ToGrpcStatus(branches.status());
  for (const BranchInfo& b : *branches) ToProto(b, resp->add_branches());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::DeleteBranch(grpc::ServerContext*,
                                                 const v1::DeleteBranchRequest* req,
                                                 v1::DeleteBranchResponse*) {
  return ToGrpcStatus(repo_->DeleteBranch(req->tenant(), req->name()));
}

grpc::Status ManagementServiceImpl::ResetBranch(grpc::ServerContext*,
                                                const v1::ResetBranchRequest* req,
                                                v1::BranchInfo* resp) {
  auto b = repo_->ResetBranch(req->tenant(), req->name());
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::RestoreBranch(grpc::ServerContext*,
                                                  const v1::RestoreBranchRequest* req,
                                                  v1::RestoreBranchResponse* resp) {
  auto r = repo_->RestoreBranch(req->tenant(), req->name(), PointOf(*req), req->backup_name());
  if (!r.ok()) return ToGrpcStatus(r.status());
  ToProto(r->first, resp->mutable_branch());
  ToProto(r->second, resp->mutable_backup());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::SetProtection(grpc::ServerContext*,
                                                  const v1::SetProtectionRequest* req,
                                                  v1::BranchInfo* resp) {
  auto b = repo_->SetProtection(req->tenant(), req->name(), req->protected_());
  if (!b.ok()) return ToGrpcStatus(b.status());
  ToProto(*b, resp);
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::GetLsnByTimestamp(grpc::ServerContext*,
                                                      const v1::GetLsnByTimestampRequest* req,
                                                      v1::GetLsnByTimestampResponse* resp) {
  auto r = repo_->LsnByTimestamp(req->tenant(), req->branch(),
                                 absl::FromUnixMicros(req->at_unix_micros()));
  if (!r.ok()) return ToGrpcStatus(r.status());
  switch (r->kind) {
    case LsnLookupKind::kPresent:
      resp->set_kind(v1::LSN_LOOKUP_KIND_PRESENT);
      break;
    case LsnLookupKind::kBeforeRetention:
      resp->set_kind(v1::LSN_LOOKUP_KIND_BEFORE_RETENTION);
      break;
    case LsnLookupKind::kFuture:
      resp->set_kind(v1::LSN_LOOKUP_KIND_FUTURE);
      break;
    case LsnLookupKind::kNoData:
      resp->set_kind(v1::LSN_LOOKUP_KIND_NO_DATA);
      break;
  }
  resp->set_lsn(r->lsn.value());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::RunGc(grpc::ServerContext*, const v1::RunGcRequest* req,
                                          v1::RunGcResponse* resp) {
  auto r = repo_->RunGc(req->tenant());
  if (!r.ok()) return ToGrpcStatus(r.status());
  resp->set_versions_removed(r->versions_removed);
  resp->set_cutoff_lsn(r->cutoff.value());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::GetHead(grpc::ServerContext*, const v1::GetHeadRequest* req,
                                            v1::GetHeadResponse* resp) {
  auto head = repo_->GetHead(req->tenant(), req->branch());
  if (!head.ok()) return ToGrpcStatus(head.status());
  resp->set_lsn(head->lsn.value());
  resp->set_archived_lsn(head->archived.value());
  return grpc::Status::OK;
}

grpc::Status ManagementServiceImpl::ReleaseWriter(grpc::ServerContext*,
                                                  const v1::ReleaseWriterRequest* req,
                                                  v1::ReleaseWriterResponse* resp) {
  auto released = repo_->ReleaseWriter(req->tenant(), req->branch(), req->writer());
  if (!released.ok()) return ToGrpcStatus(released.status());
  resp->set_released(*released);
  return grpc::Status::OK;
}

}  // namespace cambium::pageserver

namespace cambium::pageserver {

grpc::Status ManagementServiceImpl::GetCredentials(grpc::ServerContext*,
                                                   const v1::GetCredentialsRequest* req,
                                                   v1::Credentials* resp) {
  auto creds = repo_->GetCredentials(req->tenant(), req->branch());
  if (!creds.ok()) return ToGrpcStatus(creds.status());
  resp->set_user(req->read_only() ? kReaderRole : kOwnerRole);
  resp->set_password(req->read_only() ? creds->reader_password : creds->owner_password);
  resp->set_read_only(req->read_only());
  return grpc::Status::OK;
}

}  // namespace cambium::pageserver
