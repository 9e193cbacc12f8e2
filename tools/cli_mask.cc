// Cli: masked branches (`cambium branch create X --parent P --mask rules.toml`;
// docs/workflows.md). The new branch's data is rewritten by the rules before anyone
// gets credentials to it:
//  1. the rules are parsed and checked against the parent's catalog at the point
//     (tools/workflows/masking.h): a bad rule fails before anything is created;
//  2. the branch is created masked (CreateBranchRequest.masked): until step 5 the
//     pageserver refuses its credentials and branches of it;
//  3. an endpoint serving only its peer socket (no passwords set, no TCP) runs, as
//     the superuser and with triggers off, every UPDATE in one transaction, then
//     VACUUM (FULL, ANALYZE) of each masked table, which rewrites heap, TOAST and
//     indexes without the original values and replaces their statistics, then stops
//     (a shutdown checkpoint);
//  4. CompleteMasking sets the branch's history floor at its exact head: its past
//     (the parent's unmasked pages, the masking's own WAL) is never read, restored,
//     branched from or time-travelled to through it or its children;
//  5. only then are credentials handed out (a later `endpoint start`).
// Any failure after step 2 deletes the branch again.
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"
#include "tools/workflows/libpq.h"
#include "tools/workflows/masking.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

absl::Status ExecMasking(PGconn* conn, const std::string& sql, int64_t* rows = nullptr) {
  return workflows::ExecCommand(conn, sql, "masking", rows);
}

}  // namespace

absl::StatusOr<Output> Cli::MaskedBranchCreate(const BranchCreateArgs& args,
                                               const std::string& parent, absl::Duration ttl) {
  absl::StatusOr<std::string> text = ReadFileToString(*args.mask);
  if (!text.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot read mask rules %s: %s", *args.mask, text.status().message()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(workflows::MaskRules rules, workflows::ParseMaskRules(*text));
  // 1. The rules against the parent's schema at the point, before anything exists.
  CAMBIUM_RETURN_IF_ERROR(
      WithView({.branch = parent, .at = args.at, .lsn = args.lsn}, [&](const ViewSession& v) {
        CAMBIUM_ASSIGN_OR_RETURN(PgConn conn, Connect(v.socket_dir, v.port, kSuperuserRole, ""));
        return workflows::PlanMasking(conn.get(), rules).status();
      }));
  // 2. The branch, masked: no credentials, no children until completed.
  CAMBIUM_RETURN_IF_ERROR(
      CreateBranch(args.name, parent, args.lsn, args.at, ttl, BranchKind::kMasked).status());
  // 3. Rewrite through the peer socket only.
  ReportProgress("mask", "masking branch " + args.name);
  EndpointState ep{.name = args.name, .branch = args.name};
  workflows::MaskPlan plan;
  int64_t rows = 0;
  absl::StatusOr<EndpointState> started = StartEndpoint(ep, false, /*credentials=*/false);
  absl::Status masked = started.status();
  if (started.ok()) {
    ep = *started;
    masked = [&]() -> absl::Status {
      CAMBIUM_ASSIGN_OR_RETURN(
          PgConn conn, Connect(dir_.EndpointRuntimeDir(ep.name), ep.port, kSuperuserRole, ""));
      // The plan again, on the branch itself (the catalog of the same point).
      CAMBIUM_ASSIGN_OR_RETURN(plan, workflows::PlanMasking(conn.get(), rules));
      CAMBIUM_RETURN_IF_ERROR(
          ExecMasking(conn.get(), "BEGIN; SET LOCAL session_replication_role = replica"));
      for (const std::string& update : plan.updates) {
        CAMBIUM_RETURN_IF_ERROR(ExecMasking(conn.get(), update, &rows));
      }
      CAMBIUM_RETURN_IF_ERROR(ExecMasking(conn.get(), "COMMIT"));
      for (const std::string& table : plan.tables) {
        CAMBIUM_RETURN_IF_ERROR(ExecMasking(conn.get(), "VACUUM (FULL, ANALYZE) " + table));
      }
      return ExecMasking(conn.get(), "CHECKPOINT");
    }();
  }
  // Stopped in any case (a clean shutdown: its last checkpoint is after the masking).
  absl::Status stopped = StopEndpoint(ep, /*forget=*/true);
  if (masked.ok()) masked = stopped;
  // 4. The history floor at the head; credentials from now on.
  v1::CompleteMaskingRequest complete;
  complete.set_tenant(stack_.tenant);
  complete.set_name(args.name);
  absl::StatusOr<v1::BranchInfo> done =
      masked.ok() ? ControlCall(mgmt(), &v1::ManagementService::Stub::CompleteMasking, complete)
                  : absl::StatusOr<v1::BranchInfo>(masked);
  if (!done.ok()) {
    (void)DeleteBranchRpc(args.name, /*purge=*/true);
    return absl::Status(done.status().code(),
                        absl::StrFormat("masking branch %s failed, so it was deleted: %s",
                                        args.name, done.status().message()));
  }
  Output out{BranchJson(*done), ""};
  out.json["masked"] = {{"tables", plan.tables},
                        {"columns", plan.columns},
                        {"rows", rows},
                        {"history_floor_lsn", Lsn(done->history_floor_lsn()).ToString()}};
  out.text = absl::StrFormat(
      "Created branch %s from %s at %s, masked: %d columns of %d tables, %d rows rewritten; "
      "its history starts at %s.\n",
      args.name, parent, Lsn(done->ancestor_lsn()).ToString(), plan.columns, plan.tables.size(),
      rows, Lsn(done->history_floor_lsn()).ToString());
  return out;
}

}  // namespace cambium::cli
