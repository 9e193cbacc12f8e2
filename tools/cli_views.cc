// Cli: read-only Postgres sessions on points of a branch's history, for the
// workflows that read catalogs (`diff schema`, `changes`, `migrate`).
//
// A view of a branch's head is its running read-write endpoint when there is one
// (nothing to start); every other view is an ephemeral read-only copy at the point
// (a hot standby, as `cambium query --at` uses), stopped and deleted afterwards.
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/pg_roles.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"

namespace cambium::cli {

std::string ViewSpec::Label() const {
  if (lsn) return branch + "@" + *lsn;
  if (at) return branch + "@" + *at;
  return branch;
}

absl::StatusOr<ViewSpec> ParseViewSpec(const std::string& text) {
  ViewSpec spec;
  const size_t at = text.find('@');
  spec.branch = text.substr(0, at);
  CAMBIUM_RETURN_IF_ERROR(ValidateName("branch", spec.branch));
  if (at == std::string::npos) return spec;
  const std::string point = text.substr(at + 1);
  absl::StatusOr<PointText> parsed = ParsePoint(point);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "\"%s\": after '@' give a time (RFC 3339, or -5m) or an LSN (0/16B3748)", text));
  }
  (parsed->lsn ? spec.lsn : spec.at) = point;
  return spec;
}

absl::StatusOr<std::optional<EndpointState>> Cli::RunningEndpoint(const std::string& branch) {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  for (const EndpointState& ep : endpoints) {
    if (ep.name == branch && !ep.read_only && EndpointRunning(ep)) return ep;
  }
  return std::nullopt;
}

absl::Status Cli::WithView(const ViewSpec& spec,
                           const std::function<absl::Status(const ViewSession&)>& fn) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  if (!spec.at && !spec.lsn) {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<EndpointState> running, RunningEndpoint(spec.branch));
    if (running) {
      return fn(
          ViewSession{.socket_dir = dir_.EndpointRuntimeDir(running->name), .port = running->port});
    }
  }
  // "-q-": like a query's copy, never served by `connection-string --read-only`.
  const std::string name = EphemeralName(spec.branch, "q");
  ReportProgress("view", "starting a read-only endpoint on " + spec.Label());
  CAMBIUM_ASSIGN_OR_RETURN(v1::BranchInfo b,
                           CreateBranch(name, spec.branch, spec.lsn, spec.at, absl::Hours(1),
                                        BranchKind::kReadOnlyCopy));
  EndpointState ep{.name = name, .branch = spec.branch, .read_only = true};
  absl::StatusOr<EndpointState> started = StartEndpoint(ep, false, /*credentials=*/false);
  absl::Status result = started.status();
  if (started.ok()) {
    ep = *started;
    result = fn(ViewSession{.socket_dir = dir_.EndpointRuntimeDir(ep.name),
                            .port = ep.port,
                            .lsn = Lsn(b.ancestor_lsn()).ToString()});
  }
  // Stops whatever runs and deletes the ephemeral branch with the endpoint.
  (void)StopEndpoint(ep, /*forget=*/true);
  return result;
}

}  // namespace cambium::cli
