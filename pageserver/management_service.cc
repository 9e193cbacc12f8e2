#include "pageserver/management_service.h"

#include <type_traits>

#include "absl/strings/str_format.h"
#include "common/pg_roles.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "pageserver/import.h"

namespace cambium::pageserver {
namespace {

// The longest TTL of a read-only copy (CreateBranchRequest.read_only_copy).
constexpr uint64_t kMaxReadOnlyCopyTtlSeconds = 24 * 3600;

void ToProto(const TenantInfo& t, v1::TenantInfo* out) {
  out->set_name(t.name);
  cambium::ToProto(t.id, out->mutable_tenant_id());
  out->set_pitr_window_seconds(absl::ToInt64Seconds(t.pitr_window));
  out->set_trash_retention_seconds(absl::ToInt64Seconds(t.trash_retention));
}

template <typename Request>
BranchPoint PointOf(const Request& req) {
  BranchPoint point;
  if (req.point_case() == Request::kLsn) point.lsn = Lsn(req.lsn());
  if (req.point_case() == Request::kAtUnixMicros)
    point.time = absl::FromUnixMicros(req.at_unix_micros());
  if constexpr (std::is_same_v<Request, v1::RestoreBranchRequest>) {
    if (req.point_case() == Request::kSnapshot) point.snapshot = req.snapshot();
  }
  return point;
}

}  // namespace

void ToProto(const RestorableRange& r, v1::RestorableRange* out) {
  out->set_earliest_lsn(r.earliest_lsn.value());
  if (r.earliest_time) out->set_earliest_unix_micros(absl::ToUnixMicros(*r.earliest_time));
  out->set_latest_lsn(r.latest_lsn.value());
  if (r.latest_commit_time) {
    out->set_latest_commit_unix_micros(absl::ToUnixMicros(*r.latest_commit_time));
  }
  out->set_pitr_window_seconds(absl::ToInt64Seconds(r.pitr_window));
}

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
  if (info.deleted) out->set_deleted_unix_micros(absl::ToUnixMicros(*info.deleted));
  if (info.purge_after) out->set_purge_after_unix_micros(absl::ToUnixMicros(*info.purge_after));
  out->set_read_only_copy(info.read_only_copy);
  out->set_snapshot(info.snapshot);
  out->set_masking(info.masking);
  out->set_history_floor_lsn(info.history_floor.value());
  if (info.restorable) ToProto(*info.restorable, out->mutable_restorable());
}

grpc::Status ManagementServiceImpl::CreateTenant(grpc::ServerContext* ctx,
                                                 const v1::CreateTenantRequest* req,
                                                 v1::TenantInfo* resp) {
  return Run(ctx, {.action = "CreateTenant", .tenant = req->name()},
             [&](const auth::Principal&, Call&) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(
                   TenantInfo t,
                   repo_->CreateTenant(req->name(), absl::Seconds(req->pitr_window_seconds()),
                                       absl::Seconds(req->trash_retention_seconds())));
               ToProto(t, resp);
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::ListTenants(grpc::ServerContext* ctx,
                                                const v1::ListTenantsRequest*,
                                                v1::ListTenantsResponse* resp) {
  return Run(ctx, {.action = "ListTenants"}, [&](const auth::Principal&, Call&) {
    for (const TenantInfo& t : repo_->ListTenants()) ToProto(t, resp->add_tenants());
    return absl::OkStatus();
  });
}

grpc::Status ManagementServiceImpl::DeleteTenant(grpc::ServerContext* ctx,
                                                 const v1::DeleteTenantRequest* req,
                                                 v1::DeleteTenantResponse*) {
  return Run(ctx, {.action = "DeleteTenant", .tenant = req->tenant()},
             [&](const auth::Principal&, Call&) { return repo_->DeleteTenant(req->tenant()); });
}

grpc::Status ManagementServiceImpl::ImportPgdata(grpc::ServerContext* ctx,
                                                 const v1::ImportPgdataRequest* req,
                                                 v1::BranchInfo* resp) {
  return Run(ctx, {.action = "ImportPgdata", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(
                   BranchInfo b, pageserver::ImportPgdata(*repo_, req->tenant(), req->branch(),
                                                          req->pgdata_path(), import_dir_));
               ToProto(b, resp);
               call.lsn = b.last_record_lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::CreateBranch(grpc::ServerContext* ctx,
                                                 const v1::CreateBranchRequest* req,
                                                 v1::BranchInfo* resp) {
  return Run(ctx, {.action = "CreateBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call& call) -> absl::Status {
               if (req->read_only_copy() + req->snapshot() + req->masked() > 1) {
                 return absl::InvalidArgumentError(
                     "a branch is one of: a read-only copy, a snapshot, masked");
               }
               if (req->snapshot()) {
                 // Nothing of the parent changes: develop on it (protected or not).
                 CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->parent(),
                                                          /*check_protection=*/false));
                 if (req->ttl_seconds() != 0) {
                   return absl::InvalidArgumentError("a snapshot has no TTL; delete it instead");
                 }
               } else if (req->read_only_copy()) {
                 // Reading the parent is all it takes (scope read, and the token's
                 // branch patterns on the parent): the copy only ever serves reads.
                 CAMBIUM_RETURN_IF_ERROR(RequireReadCopyOf(p, req->parent(), req->name()));
                 if (req->ttl_seconds() == 0 || req->ttl_seconds() > kMaxReadOnlyCopyTtlSeconds) {
                   return absl::InvalidArgumentError(
                       absl::StrFormat("a read-only copy needs a TTL of at most %d s; asked %d s",
                                       kMaxReadOnlyCopyTtlSeconds, req->ttl_seconds()));
                 }
               } else {
                 // The new branch must be one the token may work on; its parent is only
                 // read.
                 CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name(),
                                                          /*check_protection=*/false));
               }
               std::optional<absl::Duration> ttl;
               if (req->ttl_seconds() > 0) ttl = absl::Seconds(req->ttl_seconds());
               CAMBIUM_ASSIGN_OR_RETURN(
                   BranchInfo b, repo_->CreateBranch(
                                     req->tenant(), req->name(), req->parent(), PointOf(*req), ttl,
                                     req->snapshot()         ? BranchKind::kSnapshot
                                     : req->read_only_copy() ? BranchKind::kReadOnlyCopy
                                     : req->masked()         ? BranchKind::kMasked
                                                             : BranchKind::kBranch));
               ToProto(b, resp);
               call.lsn = b.ancestor_lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::GetBranch(grpc::ServerContext* ctx,
                                              const v1::GetBranchRequest* req,
                                              v1::BranchInfo* resp) {
  return Run(ctx, {.action = "GetBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal&, Call&) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(BranchInfo b, repo_->GetBranch(req->tenant(), req->name()));
               ToProto(b, resp);
               if (uploaded_) resp->set_uploaded_lsn(uploaded_(b.timeline_id).value());
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::ListBranches(grpc::ServerContext* ctx,
                                                 const v1::ListBranchesRequest* req,
                                                 v1::ListBranchesResponse* resp) {
  return Run(ctx, {.action = "ListBranches", .tenant = req->tenant()},
             [&](const auth::Principal&, Call&) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(auto branches,
                                        req->deleted() ? repo_->ListDeletedBranches(req->tenant())
                                                       : repo_->ListBranches(req->tenant()));
               for (const BranchInfo& b : branches) {
                 v1::BranchInfo* out = resp->add_branches();
                 ToProto(b, out);
                 if (uploaded_) out->set_uploaded_lsn(uploaded_(b.timeline_id).value());
               }
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::DeleteBranch(grpc::ServerContext* ctx,
                                                 const v1::DeleteBranchRequest* req,
                                                 v1::DeleteBranchResponse* resp) {
  return Run(ctx, {.action = "DeleteBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call&) -> absl::Status {
               // A read-only copy goes as it came: with scope read on its parent.
               absl::StatusOr<BranchInfo> b = repo_->DescribeBranch(req->tenant(), req->name());
               if (b.ok() && b->read_only_copy) {
                 CAMBIUM_RETURN_IF_ERROR(RequireReadCopyOf(p, b->parent, req->name()));
                 return repo_->DeleteBranch(req->tenant(), req->name(), req->purge());
               }
               if (req->snapshot()) {
                 // A snapshot is protected: deleting it is an admin's decision.
                 if (!p.HasScope(auth::Scope::kAdmin)) {
                   return absl::PermissionDeniedError(absl::StrFormat(
                       "deleting snapshot \"%s\" needs scope admin; token %s has scope %s",
                       req->name(), p.id, p.ScopeLabel()));
                 }
                 return repo_->DeleteSnapshot(req->tenant(), req->name(), req->purge());
               }
               if (req->purge() && !p.HasScope(auth::Scope::kAdmin)) {
                 return absl::PermissionDeniedError(absl::StrFormat(
                     "purging branch \"%s\" needs scope admin; token %s has scope %s", req->name(),
                     p.id, p.ScopeLabel()));
               }
               CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name()));
               absl::Time purge_after = absl::InfinitePast();
               CAMBIUM_RETURN_IF_ERROR(
                   repo_->DeleteBranch(req->tenant(), req->name(), req->purge(), &purge_after));
               if (purge_after != absl::InfinitePast()) {
                 resp->set_purge_after_unix_micros(absl::ToUnixMicros(purge_after));
               }
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::UndeleteBranch(grpc::ServerContext* ctx,
                                                   const v1::UndeleteBranchRequest* req,
                                                   v1::BranchInfo* resp) {
  return Run(ctx, {.action = "UndeleteBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call&) -> absl::Status {
               CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name()));
               CAMBIUM_ASSIGN_OR_RETURN(BranchInfo b,
                                        repo_->UndeleteBranch(req->tenant(), req->name()));
               ToProto(b, resp);
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::GetCredentials(grpc::ServerContext* ctx,
                                                   const v1::GetCredentialsRequest* req,
                                                   v1::Credentials* resp) {
  return Run(ctx, {.action = "GetCredentials", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal& p, Call&) -> absl::Status {
               // Read-only credentials: scope read (checked by the Authenticator).
               // The owner's: develop on unprotected branches, admin on any; never
               // those of a read-only copy.
               if (!req->read_only()) {
                 CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->branch()));
                 absl::StatusOr<BranchInfo> b = repo_->DescribeBranch(req->tenant(), req->branch());
                 if (b.ok() && b->read_only_copy) {
                   return absl::FailedPreconditionError(absl::StrFormat(
                       "branch \"%s\" is a read-only copy of \"%s\": it has no read-write "
                       "credentials",
                       req->branch(), b->parent));
                 }
               }
               // A branch being masked still holds the original data: nobody's yet.
               CAMBIUM_RETURN_IF_ERROR(repo_->RequireNotMasking(req->tenant(), req->branch()));
               CAMBIUM_ASSIGN_OR_RETURN(BranchCredentials creds,
                                        repo_->GetCredentials(req->tenant(), req->branch()));
               resp->set_user(req->read_only() ? kReaderRole : kOwnerRole);
               resp->set_password(req->read_only() ? creds.reader_password : creds.owner_password);
               resp->set_read_only(req->read_only());
               return absl::OkStatus();  // the audit record never holds the password
             });
}

grpc::Status ManagementServiceImpl::ResetBranch(grpc::ServerContext* ctx,
                                                const v1::ResetBranchRequest* req,
                                                v1::BranchInfo* resp) {
  return Run(ctx, {.action = "ResetBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call& call) -> absl::Status {
               CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name()));
               CAMBIUM_ASSIGN_OR_RETURN(BranchInfo b,
                                        repo_->ResetBranch(req->tenant(), req->name()));
               ToProto(b, resp);
               call.lsn = b.ancestor_lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::RestoreBranch(grpc::ServerContext* ctx,
                                                  const v1::RestoreBranchRequest* req,
                                                  v1::RestoreBranchResponse* resp) {
  return Run(ctx, {.action = "RestoreBranch", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call& call) -> absl::Status {
               CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name()));
               CAMBIUM_ASSIGN_OR_RETURN(
                   auto r, repo_->RestoreBranch(req->tenant(), req->name(), PointOf(*req),
                                                req->backup_name()));
               ToProto(r.first, resp->mutable_branch());
               ToProto(r.second, resp->mutable_backup());
               call.lsn = r.first.ancestor_lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::SetProtection(grpc::ServerContext* ctx,
                                                  const v1::SetProtectionRequest* req,
                                                  v1::BranchInfo* resp) {
  return Run(ctx, {.action = "SetProtection", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal&, Call&) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(
                   BranchInfo b,
                   repo_->SetProtection(req->tenant(), req->name(), req->protected_()));
               ToProto(b, resp);
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::GetLsnByTimestamp(grpc::ServerContext* ctx,
                                                      const v1::GetLsnByTimestampRequest* req,
                                                      v1::GetLsnByTimestampResponse* resp) {
  return Run(ctx, {.action = "GetLsnByTimestamp", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(
                   auto r, repo_->LsnByTimestamp(req->tenant(), req->branch(),
                                                 absl::FromUnixMicros(req->at_unix_micros())));
               switch (r.kind) {
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
               resp->set_lsn(r.lsn.value());
               call.lsn = r.lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::RunGc(grpc::ServerContext* ctx, const v1::RunGcRequest* req,
                                          v1::RunGcResponse* resp) {
  return Run(ctx, {.action = "RunGc", .tenant = req->tenant()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(auto r, repo_->RunGc(req->tenant()));
               resp->set_versions_removed(r.versions_removed);
               resp->set_cutoff_lsn(r.cutoff.value());
               call.lsn = r.cutoff;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::GetHead(grpc::ServerContext* ctx, const v1::GetHeadRequest* req,
                                            v1::GetHeadResponse* resp) {
  return Run(ctx, {.action = "GetHead", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               CAMBIUM_ASSIGN_OR_RETURN(auto head, repo_->GetHead(req->tenant(), req->branch()));
               resp->set_lsn(head.lsn.value());
               resp->set_archived_lsn(head.archived.value());
               call.lsn = head.lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::GetCommitHistory(grpc::ServerContext* ctx,
                                                     const v1::GetCommitHistoryRequest* req,
                                                     v1::GetCommitHistoryResponse* resp) {
  return Run(ctx, {.action = "GetCommitHistory", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               CommitHistoryQuery query{.bucket = absl::Seconds(req->bucket_seconds())};
               if (req->from_unix_micros() != 0) {
                 query.from = absl::FromUnixMicros(req->from_unix_micros());
               }
               if (req->to_unix_micros() != 0)
                 query.to = absl::FromUnixMicros(req->to_unix_micros());
               CAMBIUM_ASSIGN_OR_RETURN(
                   BranchHistory h, repo_->GetCommitHistory(req->tenant(), req->branch(), query));
               for (const CommitBucket& b : h.commits.buckets) {
                 v1::CommitBucket* out = resp->add_buckets();
                 out->set_start_unix_micros(absl::ToUnixMicros(b.start));
                 out->set_commits(b.commits);
                 out->set_first_lsn(b.first.end.value());
                 out->set_last_lsn(b.last.end.value());
                 out->set_last_commit_unix_micros(absl::ToUnixMicros(b.last.time));
               }
               resp->set_from_unix_micros(absl::ToUnixMicros(h.from));
               resp->set_to_unix_micros(absl::ToUnixMicros(h.to));
               resp->set_truncated(h.commits.truncated);
               resp->set_counted_to_unix_micros(absl::ToUnixMicros(h.commits.counted_to));
               ToProto(h.restorable, resp->mutable_restorable());
               call.lsn = h.restorable.latest_lsn;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::ListChanges(grpc::ServerContext* ctx,
                                                const v1::ListChangesRequest* req,
                                                v1::ListChangesResponse* resp) {
  return Run(ctx, {.action = "ListChanges", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal&, Call& call) -> absl::Status {
               BranchPoint since, until;
               if (req->since_case() == v1::ListChangesRequest::kSinceLsn) {
                 since.lsn = Lsn(req->since_lsn());
               } else if (req->since_case() == v1::ListChangesRequest::kSinceUnixMicros) {
                 since.time = absl::FromUnixMicros(req->since_unix_micros());
               }
               if (req->until_case() == v1::ListChangesRequest::kUntilLsn) {
                 until.lsn = Lsn(req->until_lsn());
               } else if (req->until_case() == v1::ListChangesRequest::kUntilUnixMicros) {
                 until.time = absl::FromUnixMicros(req->until_unix_micros());
               }
               CAMBIUM_ASSIGN_OR_RETURN(
                   ChangeSet c,
                   repo_->ListChanges(req->tenant(), req->branch(), since, until,
                                      req->blocks_of_relfilenode() == 0
                                          ? std::nullopt
                                          : std::optional<BlocksOf>(
                                                BlocksOf{.db = req->blocks_of_db_oid(),
                                                         .rel = req->blocks_of_relfilenode()})));
               auto micros = [](const std::optional<absl::Time>& t) {
                 return t ? absl::ToUnixMicros(*t) : 0;
               };
               resp->set_since_lsn(c.since.value());
               resp->set_until_lsn(c.until.value());
               resp->set_since_commit_unix_micros(micros(c.since_commit));
               resp->set_until_commit_unix_micros(micros(c.until_commit));
               resp->set_wal_bytes_read(c.wal_bytes_read);
               resp->set_records_read(c.records_read);
               for (const RelationChange& r : c.changes) {
                 v1::RelationChange* out = resp->add_changes();
                 out->set_spc_oid(r.node.spc);
                 out->set_db_oid(r.node.db);
                 out->set_relfilenode(r.node.rel);
                 out->set_fork(r.fork);
                 out->set_blocks_changed(r.blocks_changed);
                 out->set_records(r.records);
                 out->set_first_lsn(r.first_lsn.value());
                 out->set_last_lsn(r.last_lsn.value());
                 out->set_first_commit_unix_micros(micros(r.first_commit));
                 out->set_last_commit_unix_micros(micros(r.last_commit));
                 out->set_created(r.created);
                 out->set_dropped(r.dropped);
                 out->set_truncated(r.truncated);
                 out->mutable_blocks()->Add(r.blocks.begin(), r.blocks.end());
                 out->set_blocks_truncated(r.blocks_truncated);
               }
               call.lsn = c.until;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::CompleteMasking(grpc::ServerContext* ctx,
                                                    const v1::CompleteMaskingRequest* req,
                                                    v1::BranchInfo* resp) {
  return Run(ctx, {.action = "CompleteMasking", .tenant = req->tenant(), .branch = req->name()},
             [&](const auth::Principal& p, Call& call) -> absl::Status {
               CAMBIUM_RETURN_IF_ERROR(RequireDevelopOn(p, req->tenant(), req->name()));
               CAMBIUM_ASSIGN_OR_RETURN(BranchInfo b,
                                        repo_->CompleteMasking(req->tenant(), req->name()));
               ToProto(b, resp);
               call.lsn = b.history_floor;
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::ReleaseWriter(grpc::ServerContext* ctx,
                                                  const v1::ReleaseWriterRequest* req,
                                                  v1::ReleaseWriterResponse* resp) {
  return Run(ctx, {.action = "ReleaseWriter", .tenant = req->tenant(), .branch = req->branch()},
             [&](const auth::Principal& p, Call&) -> absl::Status {
               // Stopping an endpoint changes no data: protection does not apply.
               CAMBIUM_RETURN_IF_ERROR(ReleaseWriterAllowed(p, req->tenant(), req->branch()));
               CAMBIUM_ASSIGN_OR_RETURN(
                   bool released,
                   repo_->ReleaseWriter(req->tenant(), req->branch(), req->writer()));
               resp->set_released(released);
               return absl::OkStatus();
             });
}

}  // namespace cambium::pageserver
