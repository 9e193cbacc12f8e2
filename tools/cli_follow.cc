// Cli: read replicas, `cambium endpoint start B --read-only --follow`.
//
// A follower is a read-only endpoint (a hot standby on an ephemeral read-only copy
// of B taken at B's exact head, docs/security.md) that also streams B's new WAL
// from B's running read-write endpoint with Postgres' own physical replication:
// primary_conninfo names the superuser over that endpoint's Unix socket (peer
// authentication; both run as OS user postgres, and its pg_hba.conf allows
// `local replication` for the peer-mapped users only). What it receives is what
// B's postgres has flushed, and B's flush returns only once the safekeepers' quorum
// has the WAL, so a follower never shows a commit B could still lose. Everything
// the standby writes goes to its own copy, never to B.
//
// Why it is exact: the copy starts at B's exact head X with B's own WAL up to X in
// its pg_wal, and is never run as a primary (that would write WAL of its own after
// X), so its history is a prefix of B's and the stream continues it byte for byte.
// It stops being one when B's history changes under it (reset, restore): those
// stop B's followers (StopFollowers). Roles and passwords come with B's WAL.
//
// Lag: `endpoint list` reports the standby's replay LSN, the bytes between it and
// B's endpoint's flushed WAL, and the age of the last replayed commit.
//
// Not done: following a branch with no running endpoint (from the safekeepers or
// the archive), and surviving a move of B's endpoint to another port.
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "common/lsn.h"
#include "common/pg_roles.h"
#include "common/status.h"
#include "tools/cli.h"

namespace cambium::cli {

using nlohmann::json;

absl::StatusOr<std::string> Cli::FollowConninfo(const EndpointState& ep) {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  for (const EndpointState& primary : endpoints) {
    if (primary.name != ep.branch || primary.read_only) continue;
    return absl::StrFormat("host=%s port=%d user=%s application_name=%s",
                           dir_.EndpointRuntimeDir(primary.name), primary.port, kSuperuserRole,
                           ep.name);
  }
  return absl::FailedPreconditionError(absl::StrFormat(
      "branch %s has no read-write endpoint to follow; start one with `cambium endpoint start %s`",
      ep.branch, ep.branch));
}

absl::StatusOr<std::vector<std::string>> Cli::StopFollowers(const std::string& branch) {
  CAMBIUM_ASSIGN_OR_RETURN(auto endpoints, dir_.LoadEndpoints());
  std::vector<std::string> stopped;
  for (EndpointState& ep : endpoints) {
    if (!ep.follow || ep.branch != branch) continue;
    CAMBIUM_RETURN_IF_ERROR(StopEndpoint(ep, /*forget=*/true));
    stopped.push_back(ep.name);
  }
  return stopped;
}

json Cli::FollowerLag(const EndpointState& ep, const std::vector<EndpointState>& endpoints) {
  json lag = {{"replay_lsn", nullptr}, {"lag_bytes", nullptr}, {"replay_lag_seconds", nullptr}};
  if (!EndpointRunning(ep)) return lag;
  auto replay = MaintenanceQuery(ep,
                                 "SELECT pg_last_wal_replay_lsn(), "
                                 "extract(epoch FROM now() - pg_last_xact_replay_timestamp())");
  if (!replay.ok() || !(*replay)[0]) return lag;
  lag["replay_lsn"] = *(*replay)[0];
  double seconds = 0;
  if ((*replay)[1] && absl::SimpleAtod(*(*replay)[1], &seconds))
    lag["replay_lag_seconds"] = seconds;
  for (const EndpointState& primary : endpoints) {
    if (primary.name != ep.branch || primary.read_only || !EndpointRunning(primary)) continue;
    auto flushed = MaintenanceQuery(primary, "SELECT pg_current_wal_flush_lsn()");
    if (!flushed.ok() || !(*flushed)[0]) break;
    absl::StatusOr<Lsn> head = Lsn::Parse(*(*flushed)[0]);
    absl::StatusOr<Lsn> at = Lsn::Parse(*(*replay)[0]);
    if (head.ok() && at.ok()) {
      lag["lag_bytes"] = head->value() > at->value() ? head->value() - at->value() : 0;
      // Caught up: the age of the last replayed commit is not a lag.
      if (head->value() <= at->value()) lag["replay_lag_seconds"] = 0;
    }
  }
  return lag;
}

}  // namespace cambium::cli
