// Cli: branch commands and LSN lookups.
#include "absl/strings/str_format.h"
#include "common/proto_convert.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {
namespace {

using nlohmann::json;
using Stub = v1::ManagementService::Stub;

// Calls `rpc` with `req` addressed to branch `name` of `tenant`: the boilerplate the
// branch RPCs share.
template <typename Request, typename Response>
absl::StatusOr<Response> CallOnBranch(
    Stub& stub, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
    const std::string& tenant, const std::string& name, Request req = {}) {
  req.set_tenant(tenant);
  req.set_name(name);
  return ControlCall(stub, rpc, req);
}

}  // namespace

json Cli::BranchJson(const v1::BranchInfo& b) const {
  json j = {
      {"name", b.name()},
      {"parent", b.parent().empty() ? json(nullptr) : json(b.parent())},
      {"timeline_id", IdHex(b.timeline_id())},
      {"branch_lsn", b.parent().empty() ? json(nullptr) : json(Lsn(b.ancestor_lsn()).ToString())},
      {"last_record_lsn", Lsn(b.last_record_lsn()).ToString()},
      {"created", FormatTimestamp(absl::FromUnixMicros(b.created_unix_micros()))},
      {"logical_size_bytes", b.logical_size_bytes()},
      {"unique_size_bytes", b.unique_size_bytes()},
      {"unique_wal_bytes", b.unique_wal_bytes()},
      {"protected", b.protected_()},
      {"read_only_copy", b.read_only_copy()},
      {"snapshot", b.snapshot()},
      {"masking", b.masking()},
      {"history_floor_lsn",
       b.history_floor_lsn() == 0 ? json(nullptr) : json(Lsn(b.history_floor_lsn()).ToString())},
      {"expires", b.expires_unix_micros() == 0
                      ? json(nullptr)
                      : json(FormatTimestamp(absl::FromUnixMicros(b.expires_unix_micros())))}};
  // With an object store: how much of the branch's archived WAL no upload holds yet
  // (what a lost pageserver disk would need from the safekeepers).
  if (b.has_uploaded_lsn()) {
    j["uploaded_lsn"] = Lsn(b.uploaded_lsn()).ToString();
    j["remote_lag_bytes"] =
        b.last_record_lsn() > b.uploaded_lsn() ? b.last_record_lsn() - b.uploaded_lsn() : 0;
  }
  // What a restore or time-travel query can reach; null where the pageserver could
  // not say, never a failed command.
  j["restorable"] = nullptr;
  if (b.has_restorable()) {
    const v1::RestorableRange& r = b.restorable();
    j["restorable"] = {{"earliest_lsn", Lsn(r.earliest_lsn()).ToString()},
                       {"earliest_time", MicrosOrNull(r.earliest_unix_micros())},
                       {"latest_lsn", Lsn(r.latest_lsn()).ToString()},
                       {"latest_time", MicrosOrNull(r.latest_commit_unix_micros())},
                       {"pitr_window_seconds", r.pitr_window_seconds()}};
  }
  if (b.deleted_unix_micros() != 0) {
    j["deleted"] = FormatTimestamp(absl::FromUnixMicros(b.deleted_unix_micros()));
    j["purge_after"] = FormatTimestamp(absl::FromUnixMicros(b.purge_after_unix_micros()));
  }
  return j;
}

absl::StatusOr<v1::BranchInfo> Cli::GetBranch(const std::string& name) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  return CallOnBranch(mgmt(), &Stub::GetBranch, stack_.tenant, name);
}

absl::StatusOr<v1::BranchInfo> Cli::CreateBranch(const std::string& name, const std::string& parent,
                                                 std::optional<std::string> lsn,
                                                 std::optional<std::string> at, absl::Duration ttl,
                                                 BranchKind kind) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::CreateBranchRequest req;
  req.set_parent(parent);
  req.set_read_only_copy(kind == BranchKind::kReadOnlyCopy);
  req.set_snapshot(kind == BranchKind::kSnapshot);
  req.set_masked(kind == BranchKind::kMasked);
  CAMBIUM_RETURN_IF_ERROR(SetPoint(req, lsn, at));
  req.set_ttl_seconds(static_cast<uint64_t>(absl::ToInt64Seconds(ttl)));
  return CallOnBranch(mgmt(), &Stub::CreateBranch, stack_.tenant, name, std::move(req));
}

absl::Status Cli::DeleteBranchRpc(const std::string& name, bool purge) {
  v1::DeleteBranchRequest req;
  req.set_purge(purge);
  absl::Status s = CallOnBranch(mgmt(), &Stub::DeleteBranch, stack_.tenant, name, req).status();
  // Purging needs scope admin; a lesser token's ephemeral branch goes to the trash
  // (freed after the retention) rather than stay.
  if (purge && absl::IsPermissionDenied(s)) {
    req.set_purge(false);
    s = CallOnBranch(mgmt(), &Stub::DeleteBranch, stack_.tenant, name, std::move(req)).status();
  }
  return s;
}

absl::StatusOr<Output> Cli::BranchCreate(const BranchCreateArgs& args) {
  absl::Duration ttl = absl::ZeroDuration();
  if (args.ttl) {
    CAMBIUM_ASSIGN_OR_RETURN(ttl, ParseHumanDuration(*args.ttl));
  }
  std::string parent = args.parent;
  if (args.from_snapshot) {
    if (args.lsn || args.at) {
      return absl::InvalidArgumentError("--from-snapshot is a point already: no --lsn or --at");
    }
    CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo snap, GetBranch(*args.from_snapshot));
    if (!snap.snapshot()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "\"%s\" is a branch, not a snapshot (cambium snapshot list)", *args.from_snapshot));
    }
    parent = *args.from_snapshot;  // its head is its point: it never takes a write
  }
  if (args.mask) return MaskedBranchCreate(args, parent, ttl);
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b,
                           CreateBranch(args.name, parent, args.lsn, args.at, ttl));
  Output out{BranchJson(b), absl::StrFormat("Created branch %s from %s at %s.\n", b.name(),
                                            b.parent(), Lsn(b.ancestor_lsn()).ToString())};
  return out;
}

absl::StatusOr<v1::GetCommitHistoryResponse> Cli::CommitHistory(v1::GetCommitHistoryRequest req) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  req.set_tenant(stack_.tenant);
  return ControlCall(mgmt(), &Stub::GetCommitHistory, req);
}

absl::StatusOr<Output> Cli::BranchShow(const std::string& name) {
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(name));
  json j = BranchJson(b);
  if (!b.has_restorable()) {
    return absl::UnavailableError(absl::StrFormat(
        "the pageserver did not say what branch %s can be restored to; retry", name));
  }
  const json& r = j["restorable"];
  auto text_of = [](const json& v) {
    return v.is_null() ? std::string("-") : v.get<std::string>();
  };
  std::string text = absl::StrFormat("branch       %s\n", b.name());
  text += absl::StrFormat("parent       %s\n", b.parent().empty() ? "-" : b.parent());
  text += absl::StrFormat("branch LSN   %s\n", text_of(j["branch_lsn"]));
  text += absl::StrFormat("head         %s\n", text_of(j["last_record_lsn"]));
  text += absl::StrFormat("created      %s\n", text_of(j["created"]));
  text += absl::StrFormat("size         %s logical, %s unique\n",
                          FormatBytes(b.logical_size_bytes()), FormatBytes(b.unique_size_bytes()));
  text += absl::StrFormat("protected    %s\n", b.protected_() ? "yes" : "no");
  text += absl::StrFormat("expires      %s\n", text_of(j["expires"]));
  text += absl::StrFormat(
      "restorable   %s (%s) .. %s (%s); PITR window %s\n", text_of(r["earliest_lsn"]),
      text_of(r["earliest_time"]), text_of(r["latest_lsn"]), text_of(r["latest_time"]),
      absl::FormatDuration(absl::Seconds(r["pitr_window_seconds"].get<int64_t>())));
  return Output{j, text};
}

absl::StatusOr<Output> Cli::BranchList(bool deleted, bool all) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::ListBranchesRequest req;
  req.set_tenant(stack_.tenant);
  req.set_deleted(deleted);
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListBranchesResponse resp,
                           ControlCall(mgmt(), &Stub::ListBranches, req));
  Output out{json::array(), ""};
  if (deleted) {
    out.text = absl::StrFormat("%-28s %-16s %-21s %-21s %10s\n", "NAME", "PARENT", "DELETED",
                               "PURGED AFTER", "UNIQUE");
    for (const v1::BranchInfo& b : resp.branches()) {
      json j = BranchJson(b);
      out.json.push_back(j);
      out.text += absl::StrFormat("%-28s %-16s %-21s %-21s %10s\n", b.name(),
                                  b.parent().empty() ? "-" : b.parent(),
                                  j["deleted"].get<std::string>().substr(0, 19) + "Z",
                                  j["purge_after"].get<std::string>().substr(0, 19) + "Z",
                                  FormatBytes(b.unique_size_bytes()));
    }
    return out;
  }
  out.text = absl::StrFormat("%-28s %-16s %-12s %-21s %10s %-9s %s\n", "NAME", "PARENT",
                             "BRANCH LSN", "CREATED", "UNIQUE", "PROTECTED", "EXPIRES");
  for (const v1::BranchInfo& b : resp.branches()) {
    if ((b.read_only_copy() || b.snapshot()) && !all) continue;
    json j = BranchJson(b);
    out.json.push_back(j);
    out.text += absl::StrFormat(
        "%-28s %-16s %-12s %-21s %10s %-9s %s\n", b.name(), b.parent().empty() ? "-" : b.parent(),
        j["branch_lsn"].is_null() ? "-" : j["branch_lsn"].get<std::string>(),
        j["created"].get<std::string>().substr(0, 19) + "Z", FormatBytes(b.unique_size_bytes()),
        b.protected_() ? "yes" : "no",
        j["expires"].is_null() ? "-" : j["expires"].get<std::string>());
  }
  return out;
}

absl::StatusOr<Output> Cli::BranchDelete(const std::string& name, bool purge) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  // The pageserver refuses protected branches, branches with children and branches
  // whose endpoint is running, in that order.
  v1::DeleteBranchRequest req;
  req.set_purge(purge);  // refused without scope admin: never quietly to the trash instead
  CAMBIUM_ASSIGN_OR_RETURN(
      v1::DeleteBranchResponse resp,
      CallOnBranch(mgmt(), &Stub::DeleteBranch, stack_.tenant, name, std::move(req)));
  // The branch's stopped endpoint (the pageserver refuses while one runs) goes with
  // it: an undeleted branch starts a new one.
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  for (EndpointState& ep : endpoints) {
    if (ep.name == name && !ep.read_only) {
      CAMBIUM_RETURN_IF_ERROR(StopEndpoint(ep, /*forget=*/true, /*release=*/false));
    }
  }
  if (purge) {
    return Output{{{"name", name}, {"deleted", true}, {"purged", true}},
                  absl::StrFormat("Deleted branch %s for good.\n", name)};
  }
  json j = {{"name", name}, {"deleted", true}, {"purged", false}, {"purge_after", nullptr}};
  std::string until;
  if (resp.purge_after_unix_micros() != 0) {
    const std::string when = FormatTimestamp(absl::FromUnixMicros(resp.purge_after_unix_micros()));
    j["purge_after"] = when;
    until = " until " + when;
  }
  return Output{j, absl::StrFormat("Deleted branch %s: it is in the trash%s; `cambium branch "
                                   "undelete %s` brings it back.\n",
                                   name, until, name)};
}

absl::StatusOr<Output> Cli::BranchUndelete(const std::string& name) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b,
                           CallOnBranch(mgmt(), &Stub::UndeleteBranch, stack_.tenant, name));
  return Output{BranchJson(b), absl::StrFormat("Branch %s is back.\n", name)};
}

absl::StatusOr<std::optional<EndpointState>> Cli::PauseEndpoint(const std::string& name,
                                                                bool restart) {
  if (!restart) return std::nullopt;
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  for (EndpointState& ep : endpoints) {
    if (ep.name != name || ep.read_only || !EndpointRunning(ep)) continue;
    // Only when the call can succeed: a protected branch, or a token without the
    // right to write it, is refused by the pageserver with the endpoint untouched.
    CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, GetBranch(name));
    if (b.protected_() || !GetCredentials(name, /*read_only=*/false).ok()) return std::nullopt;
    CAMBIUM_RETURN_IF_ERROR(StopEndpoint(ep, /*forget=*/false));
    return ep;
  }
  return std::nullopt;
}

absl::Status Cli::ResumeEndpoint(const std::optional<EndpointState>& paused) {
  if (!paused) return absl::OkStatus();
  ReportProgress("endpoint", "restarting the endpoint of branch " + paused->name +
                                 " on its new state (same port and credentials)");
  absl::Status started = StartEndpoint(*paused, /*takeover=*/false).status();
  if (started.ok()) return started;
  return absl::Status(started.code(),
                      absl::StrFormat("the endpoint of branch %s was stopped for this and did not "
                                      "start again (%s); `cambium endpoint start %s`",
                                      paused->name, started.message(), paused->name));
}

absl::StatusOr<Output> Cli::BranchReset(const std::string& name, bool restart) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  // The pageserver refuses a reset under a live writer: the branch's own endpoint is
  // stopped for it and started again on the new state.
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<EndpointState> paused, PauseEndpoint(name, restart));
  // The head it leaves, with every commit (its writer is stopped now), is kept.
  absl::StatusOr<std::string> snapshot = TakeSafetySnapshot(name, "reset");
  absl::StatusOr<v1::BranchInfo> b =
      snapshot.ok() ? CallOnBranch(mgmt(), &Stub::ResetBranch, stack_.tenant, name)
                    : absl::StatusOr<v1::BranchInfo>(snapshot.status());
  // The followers' history is not the branch's any more: they stop before its
  // endpoint starts again on the new state.
  if (!b.ok() && snapshot.ok()) DropSafetySnapshot(*snapshot);
  absl::StatusOr<std::vector<std::string>> followers =
      b.ok() ? StopFollowers(name) : std::vector<std::string>{};
  absl::Status resumed = ResumeEndpoint(paused);
  CAMBIUM_RETURN_IF_ERROR(b.status());
  CAMBIUM_RETURN_IF_ERROR(followers.status());
  CAMBIUM_RETURN_IF_ERROR(resumed);
  json j = BranchJson(*b);
  j["endpoint_restarted"] = paused.has_value();
  j["followers_stopped"] = *followers;
  j["safety_snapshot"] = TextOrNull(*snapshot);
  return Output{j, absl::StrFormat("Reset branch %s to %s's head (%s)%s. The old head is "
                                   "snapshot %s.\n",
                                   name, b->parent(), Lsn(b->ancestor_lsn()).ToString(),
                                   paused ? "; its endpoint runs on it again" : "", *snapshot)};
}

absl::StatusOr<Output> Cli::BranchRestore(const std::string& name, const RestoreArgs& args) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  if (!args.at && !args.lsn && !args.snapshot) {
    return absl::InvalidArgumentError("give --at, --lsn or --snapshot: the point to restore to");
  }
  v1::RestoreBranchRequest req;
  if (args.snapshot) {
    if (args.at || args.lsn) return absl::InvalidArgumentError("--snapshot is the point already");
    req.set_snapshot(*args.snapshot);
  }
  CAMBIUM_RETURN_IF_ERROR(SetPoint(req, args.lsn, args.at));
  req.set_backup_name(args.backup_name);
  // As for reset: the branch's own endpoint is stopped for it and started again.
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<EndpointState> paused, PauseEndpoint(name, args.restart));
  absl::StatusOr<std::string> snapshot = TakeSafetySnapshot(name, "restore");
  ReportProgress("restore", "restoring branch " + name + " in place");
  absl::StatusOr<v1::RestoreBranchResponse> resp =
      snapshot.ok()
          ? CallOnBranch(mgmt(), &Stub::RestoreBranch, stack_.tenant, name, std::move(req))
          : absl::StatusOr<v1::RestoreBranchResponse>(snapshot.status());
  if (!resp.ok() && snapshot.ok()) DropSafetySnapshot(*snapshot);
  absl::StatusOr<std::vector<std::string>> followers =
      resp.ok() ? StopFollowers(name) : std::vector<std::string>{};  // as for reset
  absl::Status resumed = ResumeEndpoint(paused);
  CAMBIUM_RETURN_IF_ERROR(resp.status());
  CAMBIUM_RETURN_IF_ERROR(followers.status());
  CAMBIUM_RETURN_IF_ERROR(resumed);
  Output out;
  out.json = {{"branch", BranchJson(resp->branch())},
              {"backup", BranchJson(resp->backup())},
              {"endpoint_restarted", paused.has_value()},
              {"followers_stopped", *followers},
              {"safety_snapshot", TextOrNull(*snapshot)}};
  out.text = absl::StrFormat(
      "Restored %s to %s; the previous head is kept as branch %s and snapshot %s%s.\n", name,
      Lsn(resp->branch().ancestor_lsn()).ToString(), resp->backup().name(), *snapshot,
      paused ? "; its endpoint runs on it again" : "");
  return out;
}

absl::StatusOr<Output> Cli::BranchProtect(const std::string& name, bool is_protected) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::SetProtectionRequest req;
  req.set_protected_(is_protected);
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b, CallOnBranch(mgmt(), &Stub::SetProtection,
                                                          stack_.tenant, name, std::move(req)));
  return Output{BranchJson(b), absl::StrFormat("Branch %s is %s.\n", name,
                                               is_protected ? "protected" : "no longer protected")};
}

absl::StatusOr<v1::GetHeadResponse> Cli::ExactHead(const std::string& branch) {
  // The safekeepers' quorum commit LSN once the archive holds it, not the archive's
  // last_record_lsn, which trails acknowledged commits.
  v1::GetHeadRequest req;
  req.set_tenant(stack_.tenant);
  req.set_branch(branch);
  return ControlCall(mgmt(), &Stub::GetHead, req);
}

absl::StatusOr<Output> Cli::ShowLsn(const std::string& branch, std::optional<std::string> at) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  if (!at) {
    CAMBIUM_ASSIGN_OR_RETURN(v1::GetHeadResponse resp, ExactHead(branch));
    const std::string lsn = cambium::Lsn(resp.lsn()).ToString();
    return Output{{{"branch", branch},
                   {"lsn", lsn},
                   {"archived_lsn", cambium::Lsn(resp.archived_lsn()).ToString()}},
                  lsn + "\n"};
  }
  CAMBIUM_ASSIGN_OR_RETURN(absl::Time t, ParseTimestamp(*at));
  v1::GetLsnByTimestampRequest req;
  req.set_tenant(stack_.tenant);
  req.set_branch(branch);
  req.set_at_unix_micros(absl::ToUnixMicros(t));
  CAMBIUM_ASSIGN_OR_RETURN(v1::GetLsnByTimestampResponse resp,
                           ControlCall(mgmt(), &Stub::GetLsnByTimestamp, req));
  const char* kind = "present";
  switch (resp.kind()) {
    case v1::LSN_LOOKUP_KIND_BEFORE_RETENTION:
      kind = "before_retention";
      break;
    case v1::LSN_LOOKUP_KIND_FUTURE:
      kind = "future";
      break;
    case v1::LSN_LOOKUP_KIND_NO_DATA:
      kind = "no_data";
      break;
    default:
      break;
  }
  const std::string lsn = cambium::Lsn(resp.lsn()).ToString();
  return Output{{{"branch", branch}, {"at", FormatTimestamp(t)}, {"lsn", lsn}, {"kind", kind}},
                absl::StrFormat("%s (%s)\n", lsn, kind)};
}

}  // namespace cambium::cli
