// Cli: the commands of `cambium`, the control plane of one machine's Cambium stack.
//
// Every command returns one JSON document (printed with --json) and a human summary;
// errors are Status values with messages that say what to do. Nothing prompts.
// Implementation by concern: cli_stack.cc (up, down, status, daemons),
// cli_branch.cc (branches, lsn), cli_endpoint.cc (endpoints, query). The daemons
// run under a supervisor (tools/supervisor.h) that `up` starts and `down` stops.
//
// Control calls to the pageserver wait for it to answer (wait-for-ready) up to
// kControlCallTimeout: a pageserver that is slow, stalled or being restarted by the
// supervisor delays a command instead of failing it.
//
// Thread-safety: one command at a time (the data directory is locked).
#ifndef CAMBIUM_TOOLS_CLI_H_
#define CAMBIUM_TOOLS_CLI_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cambium/v1/management_service.grpc.pb.h"
#include "common/service.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "objstore/object_store.h"
#include "tools/cli_state.h"
#include "tools/cli_util.h"
#include "tools/supervisor.h"

namespace cambium::workflows {
struct SchemaObject;     // tools/workflows/schema_catalog.h
struct MigrationReport;  // tools/workflows/migration_runner.h
}  // namespace cambium::workflows

namespace cambium::placement {
class PlacementStore;  // placement/placement.h
}  // namespace cambium::placement

namespace cambium::cli {

// The deadline of one control call (the pageserver's own waits, such as the exact
// head's, are shorter).
inline constexpr absl::Duration kControlCallTimeout = absl::Minutes(2);

// One control call: `rpc` with `req` on `stub`, waiting for the pageserver (see the
// top of this file) up to kControlCallTimeout.
template <typename Request, typename Response>
absl::StatusOr<Response> ControlCall(v1::ManagementService::Stub& stub,
                                     grpc::Status (v1::ManagementService::Stub::*rpc)(
                                         grpc::ClientContext*, const Request&, Response*),
                                     const Request& req) {
  Response resp;
  grpc::ClientContext ctx;
  PrepareControlCall(ctx, kControlCallTimeout);
  CAMBIUM_RETURN_IF_ERROR(FromGrpcStatus((stub.*rpc)(&ctx, req, &resp)));
  return resp;
}

// How long a command waits for an endpoint's passwords (GetCredentials).
enum class Secrets {
  kWait,   // as any control call (kControlCallTimeout): start, up, connection-string
  kQuick,  // a few seconds, no wait for a restarting pageserver: endpoint list
  kOmit,   // none (URLs without a password): status, which must answer while the
           // pageserver is sick
};

struct Output {
  nlohmann::json json;
  std::string text;
  // A result that is not an error but still fails (doctor's failed checks).
  int exit_code = 0;
  // With --json, `json` (an array) is printed as NDJSON: one element per line.
  bool ndjson = false;
};

struct BranchCreateArgs {
  std::string name;
  std::string parent = "main";
  // Start at this snapshot's point instead (its state; --parent is not used).
  std::optional<std::string> from_snapshot;
  // Mask the new branch's data by these rules before handing out credentials
  // (cli_mask.cc).
  std::optional<std::string> mask;
  std::optional<std::string> lsn;
  std::optional<std::string> at;
  std::optional<std::string> ttl;
};

// `up` (cli_stack.cc; the object store: cli_remote.cc).
struct UpArgs {
  // --object-store URL: file:///PATH or s3://BUCKET/PREFIX?endpoint=URL&region=R
  // (docs/pageserver.md "Remote history"). "" keeps what the stack has.
  std::string object_store;
  // --object-store-credentials FILE (0600); "" = AWS_ACCESS_KEY_ID and
  // AWS_SECRET_ACCESS_KEY of the environment.
  std::string object_store_credentials;
  // --pageservers N: run N pageservers (and etcd for the placement of tenants over
  // them; cli_tenant.cc). 0 keeps what the stack has (1 for a new one). Fewer than
  // the stack has is refused (move their tenants away first).
  int pageservers = 0;
};

// `url` (file:///PATH or s3://BUCKET/PREFIX?...) with "/SUB" added to its path.
std::string SubStoreUrl(const std::string& url, const std::string& sub);
// Makes the directory of a file:// store URL (a sub-store of the stack's may not exist
// yet); nothing for other URLs.
absl::Status EnsureLocalStore(const std::string& url);

// What a stack's object store holds of its pageserver (cli_remote.cc).
struct StackUploads {
  std::string store;                          // the store's URL without secrets
  std::vector<objstore::ObjectInfo> indexes;  // the pageserver's uploads, oldest first
};
// Opens the store at `url` with `credentials_file` ("" = the environment's keys) and
// lists the pageserver's uploads (the indexes of pageserver/remote_history.h).
absl::StatusOr<StackUploads> ListStackUploads(const std::string& url,
                                              const std::string& credentials_file);
// The key file `up --object-store` saved in stack directory `data_dir`, or "" if none.
std::string StackCredentialsFile(const std::string& data_dir);

struct EndpointStartArgs {
  std::string branch;
  int port = 0;
  bool read_only = false;
  // A read replica (implies read_only): keeps replaying the branch's new WAL,
  // streamed from the branch's running read-write endpoint (cli_follow.cc).
  bool follow = false;
};

// A log of the stack (`cambium logs`, tools/cli_ops.h).
struct LogFile {
  std::string name;  // "pageserver", "sk0", "main/postgres", ...
  std::string path;
};

struct RestoreArgs {
  std::optional<std::string> at;        // a time, or
  std::optional<std::string> lsn;       // an LSN, or
  std::optional<std::string> snapshot;  // a snapshot of the branch
  std::string backup_name;              // "" = NAME_old_<time>
  bool restart = true;                  // see BranchReset
};

// A point of a branch's history to read (`diff schema A B`): BRANCH (its head),
// BRANCH@TIME or BRANCH@LSN (ParseViewSpec in cli_views.cc).
struct ViewSpec {
  std::string branch;
  std::optional<std::string> at;
  std::optional<std::string> lsn;
  std::string Label() const;
};
absl::StatusOr<ViewSpec> ParseViewSpec(const std::string& text);

// A Postgres session's address on a view (WithView): the superuser through a
// socket, read-only unless it is the branch's own running endpoint.
struct ViewSession {
  std::string socket_dir;
  int port = 0;
  std::string lsn;  // the point read ("" for a running endpoint's head)
};

struct SnapshotCreateArgs {
  std::string branch;
  std::string name;  // "" = BRANCH-snap-<time>
  std::optional<std::string> at;
  std::optional<std::string> lsn;
};

struct ChangesArgs {
  std::string branch;
  std::string since;  // a time or an LSN
  std::optional<std::string> until;
  bool system = false;  // also system catalogs
  // A row-level diff of this table by primary key instead (cli_rows.cc), paged.
  std::optional<std::string> rows;
  int64_t limit = 1000;
  int64_t offset = 0;
};

struct MigratePrepareArgs {
  std::string branch;
  std::string file;
  absl::Duration timeout = absl::Minutes(10);
};

struct TokenCreateArgs {
  std::string scope;                  // read, develop or admin
  std::vector<std::string> branches;  // glob patterns; empty = every branch
  std::optional<std::string> ttl;     // e.g. 7d; none = no expiry
  std::string description;
};

class Cli {
 public:
  // `create`: make the data directory if it holds no stack (`up`); otherwise a
  // directory without a stack is NOT_FOUND (DataDir::Open).
  static absl::StatusOr<std::unique_ptr<Cli>> Open(const std::string& data_dir,
                                                   const std::string& tenant, bool create);
  ~Cli();

  // Stack.
  absl::StatusOr<Output> Up(const UpArgs& args = {});
  // `pageserver rebuild` (cli_remote.cc): stops the stack, deletes the pageserver's
  // data, and starts it again restored from the object store; endpoints restart.
  // Tenants it restored that the placement puts elsewhere are retired there.
  absl::StatusOr<Output> PageserverRebuild(const std::string& name = "pageserver");
  absl::StatusOr<Output> Down();
  absl::StatusOr<Output> Status();

  // Branches.
  absl::StatusOr<Output> BranchCreate(const BranchCreateArgs& args);
  // `deleted`: the trash instead of the live branches. `all`: also the internal
  // copies read-only endpoints and queries serve (read_only_copy), hidden otherwise.
  absl::StatusOr<Output> BranchList(bool deleted = false, bool all = false);
  // To the trash, or (`purge`) freed at once.
  absl::StatusOr<Output> BranchDelete(const std::string& name, bool purge = false);
  absl::StatusOr<Output> BranchUndelete(const std::string& name);
  // One branch, with its restorable range.
  absl::StatusOr<Output> BranchShow(const std::string& name);
  // The branch as the pageserver describes it (restorable range included).
  absl::StatusOr<v1::BranchInfo> GetBranch(const std::string& name);
  // GetCommitHistory on this stack's tenant (the console's chart).
  absl::StatusOr<v1::GetCommitHistoryResponse> CommitHistory(v1::GetCommitHistoryRequest req);
  // With `restart`, the branch's running read-write endpoint is stopped for the call
  // and started again on the new state, on the same port with the same credentials
  // (open connections drop); without, the pageserver refuses while it runs.
  absl::StatusOr<Output> BranchReset(const std::string& name, bool restart = true);
  absl::StatusOr<Output> BranchRestore(const std::string& name, const RestoreArgs& args);
  absl::StatusOr<Output> BranchProtect(const std::string& name, bool is_protected);
  absl::StatusOr<Output> ShowLsn(const std::string& branch, std::optional<std::string> at);

  // `cambium logs TARGET`: the log files of TARGET (LogFilesOf in cli_ops.h).
  absl::StatusOr<std::vector<LogFile>> LogFiles(const std::string& target);

  // Endpoints.
  absl::StatusOr<Output> EndpointStart(const EndpointStartArgs& args);
  // Stops the endpoint named `branch` (the branch's read-write endpoint, or a
  // read-only endpoint by its own name) and, with `all` or when no endpoint has that
  // name, the branch's read-only endpoints. A read-write endpoint's record stays (its
  // port is the next start's); nothing to stop on an existing branch is success.
  absl::StatusOr<Output> EndpointStop(const std::string& branch, bool all = false);
  absl::StatusOr<Output> EndpointList();
  // The supervisor's restart of a crashed endpoint (hidden `endpoint recover NAME`;
  // tools/supervisor.h): checks again under the lock, restarts postgres (or the whole
  // endpoint if its shim died), and answers {"restarted": bool, "reason"}.
  absl::StatusOr<Output> EndpointRecover(const std::string& name);
  // The URL (with the password) of the owner, or with `read_only` of the read-only
  // role, of the running endpoint of `branch` (cli_access.cc).
  absl::StatusOr<Output> ConnectionString(const std::string& branch, bool read_only);
  absl::StatusOr<Output> Query(const std::string& branch, const std::string& at,
                               const std::string& sql);

  // Snapshots (cli_snapshot.cc): named, immutable, protected points.
  absl::StatusOr<Output> SnapshotCreate(const SnapshotCreateArgs& args);
  absl::StatusOr<Output> SnapshotList();
  absl::StatusOr<Output> SnapshotDelete(const std::string& name);

  // Workflows over points of history (cli_diff.cc, cli_migrate.cc; docs/workflows.md).
  // Exit code 0 when equal, 1 when different.
  absl::StatusOr<Output> DiffSchema(const std::string& a, const std::string& b);
  absl::StatusOr<Output> Changes(const ChangesArgs& args);
  absl::StatusOr<Output> MigratePrepare(const MigratePrepareArgs& args);
  absl::StatusOr<Output> MigrateComplete(const std::string& id, bool force);
  absl::StatusOr<Output> MigrateAbandon(const std::string& id);
  absl::StatusOr<Output> MigrateList();

  // Tenants over the stack's pageservers (cli_tenant.cc; docs/scale-out.md).
  // `pageserver` "" = the one with the fewest tenants.
  absl::StatusOr<Output> TenantCreate(const std::string& name, const std::string& pageserver);
  absl::StatusOr<Output> TenantList();
  // Moves the tenant to pageserver `to` through the transfer store while its
  // endpoints keep running (they pause for the move and follow it).
  absl::StatusOr<Output> TenantMove(const std::string& name, const std::string& to);

  // API tokens and the audit log (cli_auth.cc; docs/security.md).
  absl::StatusOr<Output> TokenCreate(const TokenCreateArgs& args);
  absl::StatusOr<Output> TokenList();
  absl::StatusOr<Output> TokenRevoke(const std::string& id);
  absl::StatusOr<Output> Audit(std::optional<std::string> since);

 private:
  explicit Cli(DataDir dir);

  // cli_stack.cc
  // Starts the supervisor if it is not running (it adopts running daemons and starts
  // the others) and waits until every daemon listens.
  absl::Status EnsureDaemons();
  // Ports and command lines of the daemons, saved to stack.json for the supervisor.
  // A daemon not running keeps its recorded ports while they are free, unless
  // `new_ports` (they were taken between the pick and its bind).
  absl::Status PrepareDaemons(bool new_ports = false);
  absl::Status StartSupervisor();
  // Waits until every daemon listens; fails early if one exits after `since`.
  absl::Status WaitForDaemons(absl::Time since);
  absl::Status StopSupervisor();
  // Reads supervisor.json: the supervisor's pid and the daemons' current pids.
  void LoadSupervisor();
  bool SupervisorRunning() const;
  // The pageserver runs, or the supervisor that restarts it does.
  bool StackUp() const;
  absl::Status EnsureMainBranch();
  // OK once the pageserver answers (waits while the supervisor restarts it).
  absl::Status RequireStack();
  v1::ManagementService::Stub& mgmt();
  std::string SafekeeperAddresses() const;

  // cli_auth.cc
  // Creates DATA/secrets (0700) with service.token and admin.token (0600) unless they
  // exist: the stack's service credential and the first admin token.
  absl::Status EnsureSecrets();
  // The token of this command's calls: $CAMBIUM_TOKEN, else DATA/secrets/admin.token
  // (none before the first `up`). Set process-wide before any channel is made.
  void UseApiToken();
  std::string ServiceTokenFile() const { return dir_.Sub("secrets/service.token"); }
  std::string AdminTokenFile() const { return dir_.Sub("secrets/admin.token"); }
  // `up --object-store`: checks the store and records it (cli_remote.cc).
  absl::Status ConfigureObjectStore(const UpArgs& args);

  // cli_tenant.cc
  // `up --pageservers N` (0: unchanged).
  absl::Status ConfigurePageservers(int count);
  // etcd's command line (PrepareDaemons, with more than one pageserver).
  absl::Status PrepareEtcd();
  // Where tenants move between the pageservers: under the object store, or a
  // directory of the stack.
  std::string TransferStoreUrl() const;
  // The placement in etcd (connected, authentication turned on at first use);
  // FAILED_PRECONDITION on a stack with one pageserver.
  absl::StatusOr<placement::PlacementStore*> Placement();
  absl::StatusOr<const Daemon*> PageserverNamed(const std::string& name) const;
  // The pageserver serving `tenant` (the first one for a tenant not placed).
  absl::StatusOr<const Daemon*> PageserverOf(const std::string& tenant);
  std::unique_ptr<v1::ManagementService::Stub> StubFor(const Daemon& pageserver) const;
  // Records every pageserver's address in the placement store.
  absl::Status RegisterPageservers();
  // Finishes, on the other pageservers, a move of `name` to `dest` whose last step
  // failed.
  absl::Status FinishStaleMoves(const std::string& name, const Daemon& dest);
  // Removes the transfer store's objects of `tenant`'s moves up to `up_to_generation`
  // (manifests first); returns how many of them are still there.
  // Retires the copies of tenants `ps` holds that the placement puts on another
  // pageserver (restored from an upload or a backup older than a move away): they
  // are deleted there and forward to the pageserver that serves them. Returns their
  // names.
  absl::StatusOr<std::vector<std::string>> RetireStaleCopies(const Daemon& ps);
  // Where `pageserver` keeps its history ("" without an object store).
  std::string HistoryStoreUrl(const Daemon& pageserver) const;
  absl::StatusOr<size_t> DeleteMoveObjects(const TenantId& tenant, uint64_t up_to_generation);
  std::string EtcdPasswordFile() const { return dir_.Sub("secrets/etcd.password"); }

  // cli_branch.cc
  // What CreateBranch makes (CreateBranchRequest's kinds).
  enum class BranchKind {
    kBranch,
    kReadOnlyCopy,  // a read-only endpoint's or a view's copy: scope read may create it
    kSnapshot,      // immutable, protected (cli_snapshot.cc)
    kMasked,        // no credentials until CompleteMasking (cli_mask.cc)
  };
  absl::StatusOr<v1::BranchInfo> CreateBranch(const std::string& name, const std::string& parent,
                                              std::optional<std::string> lsn,
                                              std::optional<std::string> at, absl::Duration ttl,
                                              BranchKind kind = BranchKind::kBranch);
  // The branch's exact head (GetHead): every commit acknowledged before the call.
  absl::StatusOr<v1::GetHeadResponse> ExactHead(const std::string& branch);
  // Frees a branch at once (not to the trash): the CLI's own ephemeral branches.
  // Without scope admin (needed to purge) it goes to the trash instead.
  absl::Status DeleteBranchRpc(const std::string& name, bool purge = true);
  // The branch as --json prints it; "restorable": {"earliest_lsn", "earliest_time",
  // "latest_lsn", "latest_time", "pitr_window_seconds"}, the points a restore or a
  // time-travel query can reach now (null where the pageserver did not say).
  nlohmann::json BranchJson(const v1::BranchInfo& b) const;
  // Reset and restore act only without a live writer: the branch's own running
  // read-write endpoint (if the call can succeed) is stopped, and started again
  // afterwards on whatever the branch then points to.
  // Without `restart`, nothing is stopped (the pageserver refuses the call while the
  // endpoint's writer is attached).
  absl::StatusOr<std::optional<EndpointState>> PauseEndpoint(const std::string& name, bool restart);
  absl::Status ResumeEndpoint(const std::optional<EndpointState>& paused);

  // cli_views.cc
  // Runs `fn` on a Postgres session at `spec`: the branch's running read-write
  // endpoint for its head, else an ephemeral read-only endpoint at the point, which
  // is stopped and deleted afterwards (also when `fn` fails).
  absl::Status WithView(const ViewSpec& spec,
                        const std::function<absl::Status(const ViewSession&)>& fn);
  // The running read-write endpoint of `branch`, if any.
  absl::StatusOr<std::optional<EndpointState>> RunningEndpoint(const std::string& branch);

  // cli_diff.cc: the user objects of database postgres at `spec`; `*lsn` (if given)
  // the point read ("" for a running endpoint's head).
  absl::StatusOr<std::vector<workflows::SchemaObject>> ReadSchemaAt(const ViewSpec& spec,
                                                                    std::string* lsn = nullptr);

  // cli_mask.cc: `branch create --mask RULES` from `parent` (resolved).
  absl::StatusOr<Output> MaskedBranchCreate(const BranchCreateArgs& args, const std::string& parent,
                                            absl::Duration ttl);

  // cli_changes.cc: ListChanges of `branch` in (since, until] (until: the exact
  // head if none); with `blocks_of` (database, relfilenode), also that relation
  // file's changed blocks.
  absl::StatusOr<v1::ListChangesResponse> ListChangesRpc(
      const std::string& branch, const PointText& since, const std::optional<PointText>& until,
      std::optional<std::pair<uint32_t, uint32_t>> blocks_of = std::nullopt);
  // cli_rows.cc: `changes --rows TABLE`.
  absl::StatusOr<Output> ChangedRows(const ChangesArgs& args, const PointText& since,
                                     const std::optional<PointText>& until);

  // cli_migrate.cc: the state of migration `id` (DATA/migrations/ID.json).
  std::string MigrationFile(const std::string& id) const;
  absl::StatusOr<nlohmann::json> LoadMigration(const std::string& id);
  absl::Status SaveMigration(const nlohmann::json& state);
  // Runs `sql` on the running endpoint `ep` as its branch's owner role.
  absl::StatusOr<workflows::MigrationReport> ApplyMigration(const EndpointState& ep,
                                                            const std::string& sql,
                                                            absl::Duration timeout);
  // What changed on `branch` since `base_lsn`: user relations written, and schema
  // objects that differ from `schema_before` (empty: nothing).
  absl::StatusOr<std::vector<std::string>> ChangedSince(const std::string& branch,
                                                        const std::string& base_lsn,
                                                        const nlohmann::json& schema_before);

  // cli_snapshot.cc
  // Takes a snapshot of `branch`'s exact head before a destructive `operation`
  // (restore, reset, migrate): BRANCH-pre-OPERATION-<time>. Returns its name, or ""
  // for a protected branch (which the operation itself refuses) unless
  // `even_if_protected` (an operation a protected branch allows, given the scope).
  absl::StatusOr<std::string> TakeSafetySnapshot(const std::string& branch,
                                                 const std::string& operation,
                                                 bool even_if_protected = false);
  // Purges the safety snapshot of an operation that failed (best effort; "" = none).
  void DropSafetySnapshot(const std::string& name);
  // DeleteBranch of snapshot `name` (to the trash, or `purge`d).
  absl::StatusOr<v1::DeleteBranchResponse> DeleteSnapshotRpc(const std::string& name, bool purge);
  nlohmann::json SnapshotJson(const v1::BranchInfo& b) const;

  // cli_endpoint.cc
  // Starts the shim and Postgres of `ep`; on failure stops whatever it started and
  // records `ep` as stopped (pids 0).
  // A read-only endpoint runs as a hot standby; unless `credentials` is false (the
  // CLI's own time-travel queries, which use the peer socket), its ephemeral branch
  // first runs once as a primary to take its source branch's passwords.
  absl::StatusOr<EndpointState> StartEndpoint(EndpointState ep, bool takeover,
                                              bool credentials = true);
  // REQUIRES: ep's shim is mounted or mounting. Waits for its mount, then starts
  // Postgres (see StartEndpoint) and waits until it accepts queries. fresh_storage:
  // the shim was just started (nothing unsynced there; see RunPostgres).
  absl::Status StartPostgres(EndpointState& ep, bool credentials, bool fresh_storage);
  // Stops Postgres and the shim, then (with `release`, and unless the whole stack
  // is down) releases the shim's writer at the pageserver, which a killed shim
  // never detached. `forget` also removes the endpoint (and the ephemeral branch of
  // a read-only one), otherwise it is recorded as stopped; an endpoint whose writer
  // could not be released is kept so that a second `endpoint stop` can try again.
  absl::Status StopEndpoint(EndpointState& ep, bool forget, bool release = true);
  // ReleaseWriter(branch = writer = `name`, the shim's --endpoint): true if a dead
  // writer was released; false if none, or another writer, holds the branch, or the
  // branch is gone. REQUIRES: no shim of this stack runs as `name`.
  absl::StatusOr<bool> ReleaseWriter(const std::string& name);
  // Starts Postgres on the mounted branch of `ep` and waits until it accepts
  // queries (on the peer socket at least).
  absl::Status RunPostgres(EndpointState& ep, bool fresh_storage);
  bool EndpointRunning(const EndpointState& ep) const;
  nlohmann::json EndpointJson(const EndpointState& ep, Secrets secrets = Secrets::kWait);

  // cli_follow.cc: read replicas (`endpoint start B --read-only --follow`).
  // The primary_conninfo of follower `ep`: the superuser over the socket of its
  // branch's read-write endpoint (peer authentication, replication allowed there).
  absl::StatusOr<std::string> FollowConninfo(const EndpointState& ep);
  // Stops (and forgets) the followers of `branch`: after a reset or restore the
  // history they replayed is not the branch's any more. Returns their names.
  absl::StatusOr<std::vector<std::string>> StopFollowers(const std::string& branch);
  // replay_lsn, lag_bytes (behind the branch's read-write endpoint's flushed WAL,
  // found in `endpoints`) and replay_lag_seconds of a running follower; nulls where
  // unknown.
  nlohmann::json FollowerLag(const EndpointState& ep, const std::vector<EndpointState>& endpoints);

  // cli_access.cc: credentials and who may connect (docs/security.md).
  // The first row of `sql` run as the superuser through `ep`'s peer socket.
  absl::StatusOr<std::vector<std::optional<std::string>>> MaintenanceQuery(const EndpointState& ep,
                                                                           const std::string& sql);
  // A fresh runtime directory for `ep` (mountpoint, socket, pg_hba.conf allowing
  // TCP only with `tcp`), owned by postgres.
  absl::Status PrepareEndpointRuntime(const EndpointState& ep, bool tcp);
  absl::Status WriteHba(const EndpointState& ep, bool tcp);
  // Removes the stack's runtime directory if nothing is mounted in it (`down`: the
  // next start of every endpoint makes its part again).
  void RemoveRuntimeDir() const;
  // The postgres flags that make it use the runtime directory's socket and files.
  std::vector<std::string> PostgresAccessArgs(const EndpointState& ep) const;
  // GetCredentials of the pageserver, cached for this command.
  absl::StatusOr<v1::Credentials> GetCredentials(const std::string& branch, bool read_only,
                                                 Secrets secrets = Secrets::kWait);
  // Through one superuser session on the peer socket: with `passwords`
  // (REQUIRES: Postgres of `ep` runs as a primary), creates the roles if missing
  // and sets the passwords of `ep.branch` in the catalog, in one transaction; then,
  // with `tcp`, lets clients in over TCP (pg_hba.conf, reload) and waits until the
  // read-only role's password works there.
  absl::Status SetUpAccess(const EndpointState& ep, bool passwords, bool tcp);
  // postgresql://USER:PASSWORD@127.0.0.1:PORT/postgres (the read-only role's with
  // `read_only`, and always on a read-only endpoint); without the password if the
  // pageserver refuses it.
  std::string Url(const EndpointState& ep, bool read_only = false,
                  Secrets secrets = Secrets::kWait);
  // The superuser through the peer socket (OS users root and postgres only).
  std::string MaintenanceUrl(const EndpointState& ep) const;

  DataDir dir_;
  StackState stack_;
  SupervisorState supervisor_;
  std::unique_ptr<v1::ManagementService::Stub> mgmt_;
  std::unique_ptr<placement::PlacementStore> placement_;  // Placement()
  std::map<std::pair<std::string, bool>, absl::StatusOr<v1::Credentials>> credentials_;
};

}  // namespace cambium::cli

#endif  // CAMBIUM_TOOLS_CLI_H_
