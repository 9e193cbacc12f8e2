// Cli: snapshots, the named, immutable, protected points of a branch
// (CreateBranchRequest.snapshot; docs/workflows.md). A snapshot costs no compute
// and no storage beyond the history it pins; branches are made from it, and its
// branch is restored to it (`branch restore B --snapshot N`).
//
// Every destructive command takes one of the branch's head first
// (TakeSafetySnapshot) and names it: restore, reset, migrate complete. Delete does
// not: the trash keeps the deleted branch itself (`branch undelete`), and a
// snapshot, which reads the branch's timeline, would forbid the delete.
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

std::string TimeSuffix() {
  return absl::FormatTime("%Y%m%dT%H%M%S", absl::Now(), absl::UTCTimeZone());
}

}  // namespace

json Cli::SnapshotJson(const v1::BranchInfo& b) const {
  return {{"name", b.name()},
          {"branch", b.parent()},
          {"lsn", Lsn(b.ancestor_lsn()).ToString()},
          {"created", FormatTimestamp(absl::FromUnixMicros(b.created_unix_micros()))},
          {"unique_size_bytes", b.unique_size_bytes()}};
}

absl::StatusOr<v1::DeleteBranchResponse> Cli::DeleteSnapshotRpc(const std::string& name,
                                                                bool purge) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::DeleteBranchRequest req;
  req.set_tenant(stack_.tenant);
  req.set_name(name);
  req.set_snapshot(true);
  req.set_purge(purge);
  return ControlCall(mgmt(), &v1::ManagementService::Stub::DeleteBranch, req);
}

absl::StatusOr<std::string> Cli::TakeSafetySnapshot(const std::string& branch,
                                                    const std::string& operation,
                                                    bool even_if_protected) {
  // A protected branch refuses the operation itself: no snapshot to leave behind.
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(branch));
  if (b.protected_() && !even_if_protected) return std::string();
  const std::string name = NameWithSuffix(branch, "-pre-" + operation + "-" + TimeSuffix());
  absl::StatusOr<v1::BranchInfo> s = CreateBranch(name, branch, std::nullopt, std::nullopt,
                                                  absl::ZeroDuration(), BranchKind::kSnapshot);
  if (!s.ok()) {
    return absl::Status(s.status().code(),
                        absl::StrFormat("nothing was changed: the safety snapshot of %s before "
                                        "%s failed: %s",
                                        branch, operation, s.status().message()));
  }
  ReportProgress("snapshot", "took snapshot " + name + " of " + branch + " at " +
                                 Lsn(s->ancestor_lsn()).ToString());
  return name;
}

void Cli::DropSafetySnapshot(const std::string& name) {
  // Needs scope admin: with a lesser token the snapshot stays (snapshot list shows it).
  if (!name.empty()) (void)DeleteSnapshotRpc(name, /*purge=*/true);
}

absl::StatusOr<Output> Cli::SnapshotCreate(const SnapshotCreateArgs& args) {
  const std::string name =
      args.name.empty() ? NameWithSuffix(args.branch, "-snap-" + TimeSuffix()) : args.name;
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b,
                           CreateBranch(name, args.branch, args.lsn, args.at, absl::ZeroDuration(),
                                        BranchKind::kSnapshot));
  return Output{SnapshotJson(b), absl::StrFormat("Snapshot %s of %s at %s.\n", name, args.branch,
                                                 Lsn(b.ancestor_lsn()).ToString())};
}

absl::StatusOr<Output> Cli::SnapshotList() {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::ListBranchesRequest req;
  req.set_tenant(stack_.tenant);
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListBranchesResponse resp,
                           ControlCall(mgmt(), &v1::ManagementService::Stub::ListBranches, req));
  Output out{json::array(), absl::StrFormat("%-40s %-20s %-14s %-21s %10s\n", "NAME", "BRANCH",
                                            "LSN", "CREATED", "UNIQUE")};
  for (const v1::BranchInfo& b : resp.branches()) {
    if (!b.snapshot()) continue;
    json j = SnapshotJson(b);
    out.json.push_back(j);
    out.text += absl::StrFormat(
        "%-40s %-20s %-14s %-21s %10s\n", b.name(), b.parent(), j["lsn"].get<std::string>(),
        j["created"].get<std::string>().substr(0, 19) + "Z", FormatBytes(b.unique_size_bytes()));
  }
  return out;
}

absl::StatusOr<Output> Cli::SnapshotDelete(const std::string& name) {
  CAMBIUM_ASSIGN_OR_RETURN(v1::DeleteBranchResponse resp, DeleteSnapshotRpc(name, /*purge=*/false));
  json j = {{"name", name}, {"deleted", true}, {"purge_after", nullptr}};
  if (resp.purge_after_unix_micros() != 0) {
    j["purge_after"] = FormatTimestamp(absl::FromUnixMicros(resp.purge_after_unix_micros()));
  }
  return Output{j, absl::StrFormat("Deleted snapshot %s: it is in the trash; `cambium branch "
                                   "undelete %s` brings it back.\n",
                                   name, name)};
}

}  // namespace cambium::cli
