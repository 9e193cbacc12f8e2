#include "auth/method_policy.h"

#include <string>

#include "absl/container/flat_hash_map.h"

namespace cambium::auth {
namespace {

const absl::flat_hash_map<std::string, Need>& Table() {
  static const auto* table = new absl::flat_hash_map<std::string, Need>{
      // Management: the scope table of docs/security.md.
      {"/cambium.v1.ManagementService/CreateTenant", Need::kAdmin},
      {"/cambium.v1.ManagementService/ListTenants", Need::kRead},
      {"/cambium.v1.ManagementService/DeleteTenant", Need::kAdmin},
      // Reads a directory on the pageserver's machine.
      {"/cambium.v1.ManagementService/ImportPgdata", Need::kAdmin},
      // Read-only copies need read; the handler asks develop for the others.
      {"/cambium.v1.ManagementService/CreateBranch", Need::kRead},
      {"/cambium.v1.ManagementService/GetBranch", Need::kRead},
      {"/cambium.v1.ManagementService/ListBranches", Need::kRead},
      {"/cambium.v1.ManagementService/DeleteBranch", Need::kRead},  // as CreateBranch
      {"/cambium.v1.ManagementService/ResetBranch", Need::kDevelop},
      {"/cambium.v1.ManagementService/RestoreBranch", Need::kDevelop},
      {"/cambium.v1.ManagementService/SetProtection", Need::kAdmin},
      {"/cambium.v1.ManagementService/GetLsnByTimestamp", Need::kRead},
      {"/cambium.v1.ManagementService/GetHead", Need::kRead},
      // Commit counts and LSNs of a branch's history (the console's chart).
      {"/cambium.v1.ManagementService/GetCommitHistory", Need::kRead},
      {"/cambium.v1.ManagementService/ListChanges", Need::kRead},
      {"/cambium.v1.ManagementService/CompleteMasking", Need::kDevelop},
      // Endpoint stop: read for a read-only copy; the handler asks develop otherwise.
      {"/cambium.v1.ManagementService/ReleaseWriter", Need::kRead},
      {"/cambium.v1.ManagementService/RunGc", Need::kAdmin},
      {"/cambium.v1.ManagementService/UndeleteBranch", Need::kDevelop},
      // Read-only credentials need read; the handler asks more for the owner's.
      {"/cambium.v1.ManagementService/GetCredentials", Need::kRead},
      {"/cambium.v1.ManagementService/CreateToken", Need::kAdmin},
      {"/cambium.v1.ManagementService/ListTokens", Need::kAdmin},
      {"/cambium.v1.ManagementService/RevokeToken", Need::kAdmin},
      {"/cambium.v1.ManagementService/ReadAudit", Need::kAdmin},
      {"/cambium.v1.ManagementService/ExportTenant", Need::kAdmin},
      {"/cambium.v1.ManagementService/AttachTenant", Need::kAdmin},
      {"/cambium.v1.ManagementService/FinishTenantMove", Need::kAdmin},
      // Data path of the pageserver: shims and the stack's own daemons only.
      {"/cambium.v1.PageService/GetTimelineInfo", Need::kService},
      {"/cambium.v1.PageService/AttachWriter", Need::kService},
      {"/cambium.v1.PageService/DetachWriter", Need::kService},
      {"/cambium.v1.PageService/GetManifest", Need::kService},
      {"/cambium.v1.PageService/GetPages", Need::kService},
      {"/cambium.v1.PageService/PutMutations", Need::kService},
      {"/cambium.v1.PageService/Barrier", Need::kService},
      {"/cambium.v1.PageService/GetWal", Need::kService},
      // Safekeepers: every method is the data path (WAL, fencing, trimming).
      {"/cambium.v1.SafekeeperService/Elect", Need::kService},
      {"/cambium.v1.SafekeeperService/Append", Need::kService},
      {"/cambium.v1.SafekeeperService/ReadWal", Need::kService},
      {"/cambium.v1.SafekeeperService/Status", Need::kService},
      {"/cambium.v1.SafekeeperService/ReportArchived", Need::kService},
      {"/cambium.v1.SafekeeperService/DeleteTimeline", Need::kService},
  };
  return *table;
}

}  // namespace

std::optional<Need> RequiredFor(std::string_view full_method) {
  const auto& table = Table();
  auto it = table.find(std::string(full_method));
  if (it == table.end()) return std::nullopt;
  return it->second;
}

std::string_view NeedName(Need need) {
  switch (need) {
    case Need::kService:
      return "service";
    case Need::kRead:
      return "read";
    case Need::kDevelop:
      return "develop";
    case Need::kAdmin:
      return "admin";
  }
  return "service";
}

}  // namespace cambium::auth
