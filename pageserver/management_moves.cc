// ManagementServiceImpl: the three steps of moving a tenant between pageservers
// (proto ExportTenant, AttachTenant, FinishTenantMove; docs/scale-out.md).
#include <chrono>

#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "pageserver/management_service.h"
#include "pageserver/tenant_transfer.h"

namespace cambium::pageserver {
namespace {

std::string SecondsSince(std::chrono::steady_clock::time_point start) {
  return absl::StrFormat(
      "%.3f", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace

void ManagementServiceImpl::FollowTenant(const TenantId& id) {
  if (!transfers_.follow) return;
  for (const auto& timeline : repo_->AllTimelines()) {
    if (timeline->tenant_id() == id && timeline->generation() > 0) transfers_.follow(timeline);
  }
}

grpc::Status ManagementServiceImpl::ExportTenant(grpc::ServerContext* ctx,
                                                 const v1::ExportTenantRequest* req,
                                                 v1::ExportTenantResponse* resp) {
  return Run(ctx, {.action = "ExportTenant", .tenant = req->tenant()},
             [&](const auth::Principal&, Call&) -> absl::Status {
               if (transfers_.store == nullptr) {
                 return absl::FailedPreconditionError(
                     "this pageserver has no transfer store (--transfer-store): it cannot move "
                     "tenants");
               }
               if (req->generation() == 0) {
                 return absl::InvalidArgumentError("ExportTenant needs the move's generation");
               }
               std::lock_guard<std::mutex> lock(transfer_mu_);
               const auto start = std::chrono::steady_clock::now();
               CAMBIUM_ASSIGN_OR_RETURN(Repository::MovingTenant t,
                                        repo_->FenceTenantForMove(req->tenant()));
               auto m = pageserver::ExportTenant(
                   *repo_->store(), t.id, t.name, t.meta_prefixes, t.timelines, *transfers_.store,
                   req->generation(),
                   absl::StrFormat("%s/export-%s", transfers_.scratch_dir, t.id.ToString()));
               if (!m.ok()) {
                 // Serve it here again rather than leave it out of service: a retried
                 // move fences it anew.
                 LogWarning("tenant_export_failed", {{"tenant", t.name}, {"status", m.status()}});
                 absl::Status aborted = repo_->AbortMove(t.id);
                 if (!aborted.ok()) {
                   LogError("tenant_move_abort_failed", {{"tenant", t.name}, {"status", aborted}});
                 }
                 FollowTenant(t.id);
                 return m.status();
               }
               ToProto(t.id, resp->mutable_tenant_id());
               resp->set_manifest_key(TransferManifestKey(t.id, req->generation()));
               resp->set_bytes(m->bytes());
               resp->set_files(m->files.size());
               resp->set_keys(m->entries());
               resp->set_timelines(m->timelines.size());
               LogInfo("tenant_exported", {{"tenant", t.name},
                                           {"generation", req->generation()},
                                           {"bytes", m->bytes()},
                                           {"files", m->files.size()},
                                           {"keys", m->entries()},
                                           {"seconds", SecondsSince(start)}});
               return absl::OkStatus();
             });
}

grpc::Status ManagementServiceImpl::AttachTenant(grpc::ServerContext* ctx,
                                                 const v1::AttachTenantRequest* req,
                                                 v1::AttachTenantResponse* resp) {
  return Run(
      ctx, {.action = "AttachTenant"}, [&](const auth::Principal&, Call& call) -> absl::Status {
        if (transfers_.store == nullptr) {
          return absl::FailedPreconditionError(
              "this pageserver has no transfer store (--transfer-store): it cannot attach tenants");
        }
        std::lock_guard<std::mutex> lock(transfer_mu_);
        const auto start = std::chrono::steady_clock::now();
        CAMBIUM_ASSIGN_OR_RETURN(TransferManifest m,
                                 ReadTransferManifest(*transfers_.store, req->manifest_key()));
        call.tenant = m.tenant_name;
        CAMBIUM_RETURN_IF_ERROR(repo_->PrepareAttach(m.tenant));
        CAMBIUM_RETURN_IF_ERROR(IngestTenant(
            *repo_->store(), *transfers_.store, m,
            absl::StrFormat("%s/attach-%s", transfers_.scratch_dir, m.tenant.ToString())));
        CAMBIUM_ASSIGN_OR_RETURN(TenantInfo info, repo_->LoadAttachedTenant(m.tenant));
        // WAL committed since the export is archived here from now on.
        FollowTenant(m.tenant);
        v1::TenantInfo* t = resp->mutable_tenant();
        t->set_name(info.name);
        ToProto(info.id, t->mutable_tenant_id());
        t->set_pitr_window_seconds(absl::ToInt64Seconds(info.pitr_window));
        t->set_trash_retention_seconds(absl::ToInt64Seconds(info.trash_retention));
        resp->set_bytes(m.bytes());
        LogInfo("tenant_attached_from_transfer", {{"tenant", info.name},
                                                  {"generation", m.generation},
                                                  {"bytes", m.bytes()},
                                                  {"seconds", SecondsSince(start)}});
        return absl::OkStatus();
      });
}

grpc::Status ManagementServiceImpl::FinishTenantMove(grpc::ServerContext* ctx,
                                                     const v1::FinishTenantMoveRequest* req,
                                                     v1::FinishTenantMoveResponse*) {
  const TenantId id = FromProto<TenantIdTag>(req->tenant_id());
  return Run(
      ctx, {.action = "FinishTenantMove", .tenant = id.ToString()},
      [&](const auth::Principal&, Call&) -> absl::Status {
        std::lock_guard<std::mutex> lock(transfer_mu_);
        if (req->stale_copy()) {
          if (req->abort() || req->moved_to().empty()) {
            return absl::InvalidArgumentError(
                "retiring a stale copy needs the address that serves the tenant, and no "
                "abort");
          }
          // Out of service first (as for an export), then forwarded. A copy
          // already forwarding is re-pointed.
          absl::Status fenced = repo_->FenceTenantForMove(id.ToString()).status();
          // NOT_FOUND: no copy here at all, nothing to retire.
          if (!fenced.ok() && repo_->MoveStatus(id).ok()) return fenced;
          LogWarning("stale_tenant_copy_retired", {{"tenant", id}, {"served_by", req->moved_to()}});
          return repo_->FinishMove(id, req->moved_to());
        }
        if (!req->abort()) return repo_->FinishMove(id, req->moved_to());
        CAMBIUM_RETURN_IF_ERROR(repo_->AbortMove(id));
        FollowTenant(id);
        return absl::OkStatus();
      });
}

}  // namespace cambium::pageserver
