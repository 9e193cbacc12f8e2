// cambium: the command line of a local Cambium stack. Every command takes --json
// (one JSON document on stdout), --data-dir (found as LocateDataDir in
// tools/cli_state.h says) and --tenant; it never prompts. Errors go to stderr with
// exit code 1 (2 for a usage error; tools/cli_usage.h), as JSON with --json.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/logging.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_ops.h"
#include "tools/cli_usage.h"
#include "tools/cli_util.h"
#include "tools/console/console_server.h"
#include "tools/supervisor.h"

namespace {

struct Globals {
  std::string data_dir;
  std::string tenant;
  bool json = false;
};

// Whether a command may create the data directory: only `up` starts a stack.
enum class DataDirUse { kExisting, kCreate };

absl::StatusOr<std::unique_ptr<cambium::cli::Cli>> OpenCli(const Globals& g, DataDirUse use) {
  CAMBIUM_ASSIGN_OR_RETURN(cambium::cli::DataDirLocation where,
                           cambium::cli::LocateDataDir(g.data_dir));
  return cambium::cli::Cli::Open(where.path, g.tenant, use == DataDirUse::kCreate);
}

// Prints a command's result (or error) and returns the exit code.
int Report(const Globals& g, const absl::StatusOr<cambium::cli::Output>& out) {
  if (!out.ok()) {
    if (g.json) {
      std::cerr << cambium::cli::ErrorJson(out.status()).dump() << "\n";
    } else {
      std::cerr << "cambium: " << out.status().message() << "\n";
    }
    return 1;
  }
  if (g.json && out->ndjson && out->json.is_array()) {
    for (const auto& line : out->json) std::cout << line.dump() << "\n";
  } else if (g.json) {
    std::cout << out->json.dump(2) << "\n";
  } else {
    std::cout << out->text;
  }
  return out->exit_code;
}

int Run(const Globals& g,
        const std::function<absl::StatusOr<cambium::cli::Output>(cambium::cli::Cli&)>& fn,
        DataDirUse use = DataDirUse::kExisting) {
  absl::StatusOr<std::unique_ptr<cambium::cli::Cli>> cli = OpenCli(g, use);
  const int code =
      Report(g, cli.ok() ? fn(**cli) : absl::StatusOr<cambium::cli::Output>(cli.status()));
  // The answer is out and every state file is written (synchronously, by the command):
  // exit without tearing down the gRPC channels and threads. That teardown (gRPC
  // shuts down, starts its threads again, joins them) took ~25 ms after the output,
  // and a script reads a command's output until the process exits: it was in the
  // time to the first query of every `endpoint start` (issue 11). The data
  // directory's lock goes with the process; logs are flushed at every line.
  std::cout.flush();
  std::cerr.flush();
  std::_Exit(code);
}

// `cambium logs`: the files are found under the data directory's lock, printed
// (and followed) without it (tools/cli_ops.h).
int Logs(const Globals& g, const std::string& target, int lines, bool follow) {
  absl::StatusOr<std::vector<cambium::cli::LogFile>> files;
  {
    absl::StatusOr<std::unique_ptr<cambium::cli::Cli>> cli = OpenCli(g, DataDirUse::kExisting);
    files = cli.ok() ? (*cli)->LogFiles(target) : cli.status();
  }
  if (!files.ok()) return Report(g, files.status());
  return cambium::cli::PrintLogs(*files, lines, follow, g.json);
}

int Doctor(const Globals& g) {
  absl::StatusOr<cambium::cli::DataDirLocation> where = cambium::cli::LocateDataDir(g.data_dir);
  if (!where.ok()) return Report(g, where.status());
  return Report(g, cambium::cli::Doctor(*where));
}

int Supervise(const Globals& g) {
  absl::StatusOr<cambium::cli::DataDirLocation> where = cambium::cli::LocateDataDir(g.data_dir);
  if (!where.ok()) {
    std::cerr << "cambium supervise: " << where.status().message() << "\n";
    return 1;
  }
  std::error_code ec;
  const std::string dir = std::filesystem::canonical(where->path, ec).string();
  if (ec) {
    std::cerr << "cambium supervise: " << g.data_dir << ": " << ec.message() << "\n";
    return 1;
  }
  (void)cambium::InitLogging({.file = dir + "/logs/supervisor.log"});
  return cambium::cli::RunSupervisor(dir).ok() ? 0 : 1;
}

// `cambium console`: serves the read-only web page until SIGINT or SIGTERM
// (tools/console/console_server.h); the data directory is locked per API call only.
int Console(const Globals& g, const std::string& listen) {
  absl::StatusOr<cambium::cli::DataDirLocation> where = cambium::cli::LocateDataDir(g.data_dir);
  if (!where.ok()) return Report(g, where.status());
  // The commands the page shows must reach this stack from any shell.
  std::vector<std::string> options;
  if (where->source != "default") {
    options = {"--data-dir", std::filesystem::absolute(where->path).lexically_normal().string()};
  }
  if (!g.tenant.empty()) options.insert(options.end(), {"--tenant", g.tenant});
  return cambium::console::RunConsole(
      {.listen = listen, .data_dir = where->path, .tenant = g.tenant, .command_options = options},
      [&g](const absl::StatusOr<cambium::cli::Output>& out) { return Report(g, out); });
}

}  // namespace

int main(int argc, char** argv) {
  // Files of the stack are the operator's alone (docs/security.md): state, logs,
  // daemon data, whatever the daemons started from here create.
  umask(077);
  // Daemon logs go to files; the CLI itself only reports results.
  (void)cambium::InitLogging({.level = cambium::LogLevel::kError});
  Globals g;
  CLI::App app{"cambium: copy-on-write branching storage for stock PostgreSQL"};
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--data-dir", g.data_dir,
                 "Stack directory (default: $CAMBIUM_DATA_DIR, data_dir in "
                 "/etc/cambium/cambium.toml, ./.cambium if it exists, /var/lib/cambium)");
  bool version = false;  // answered before parsing (tools/cli_usage.h)
  app.add_flag("--version", version, "Print the version");
  app.add_option("--tenant", g.tenant, "Tenant (default: default)");
  app.add_flag("--json", g.json, "Print one JSON document");
  std::function<int()> action;

  cambium::cli::UpArgs up_args;
  auto* up =
      app.add_subcommand("up", "Start the pageserver, 3 safekeepers and an endpoint on main");
  up->add_option("--object-store", up_args.object_store,
                 "Keep the pageserver's history in this object store too: "
                 "s3://BUCKET/PREFIX?endpoint=URL&region=R or file:///PATH");
  up->add_option("--object-store-credentials", up_args.object_store_credentials,
                 "File (0600) with AWS_ACCESS_KEY_ID= and AWS_SECRET_ACCESS_KEY= lines "
                 "(default: those environment variables)");
  up->add_option("--pageservers", up_args.pageservers,
                 "Run this many pageservers, with tenants placed over them (etcd keeps the "
                 "placement; default: what the stack has, 1 for a new one)")
      ->check(CLI::Range(1, 16));
  up->callback([&] {
    action = [&] {
      return Run(
          g, [&](auto& c) { return c.Up(up_args); }, DataDirUse::kCreate);
    };
  });
  auto* pageserver = app.add_subcommand("pageserver", "Operate the pageserver");
  pageserver->require_subcommand(1);
  std::string rebuild_name = "pageserver";
  auto* rebuild = pageserver->add_subcommand(
      "rebuild",
      "Replace a pageserver's data with what the object store holds (after a lost disk); "
      "endpoints restart on their ports");
  rebuild->add_option("--pageserver", rebuild_name,
                      "Which one, on a stack with several (default: pageserver)");
  rebuild->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.PageserverRebuild(rebuild_name); }); };
  });
  app.add_subcommand("down", "Stop endpoints and daemons (state is kept)")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.Down(); }); };
  });
  app.add_subcommand("status", "Daemons, endpoints and where they log")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.Status(); }); };
  });

  std::string log_target;
  int log_lines = 100;
  bool log_follow = false;
  auto* logs = app.add_subcommand(
      "logs",
      "Logs of the daemons, one daemon (pageserver, sk0, safekeepers, supervisor) or "
      "an endpoint (its postgres and shim)");
  logs->add_option("target", log_target, "A daemon or an endpoint's name (default: every daemon)");
  logs->add_option("-n,--lines", log_lines, "How many of the last lines (default 100)")
      ->check(CLI::NonNegativeNumber);
  logs->add_flag("-f,--follow", log_follow, "Keep printing what is appended");
  logs->callback([&] { action = [&] { return Logs(g, log_target, log_lines, log_follow); }; });
  app.add_subcommand("doctor",
                     "Check FUSE, permissions, Postgres, programs, disk space and ports; say "
                     "what to fix")
      ->callback([&] { action = [&] { return Doctor(g); }; });

  // Answered before parsing (tools/cli_usage.h); registered to be listed.
  app.add_subcommand("help", "The usage of a command: cambium help branch create")->allow_extras();

  // Hidden: what `up` runs detached (tools/supervisor.h). It takes no lock.
  app.add_subcommand("supervise", "Restart crashed daemons of the stack (started by up)")
      ->group("")
      ->callback([&] { action = [&] { return Supervise(g); }; });

  auto* branch =
      app.add_subcommand("branch", "Create, list, delete, reset, restore, protect branches");
  branch->require_subcommand(1);
  cambium::cli::BranchCreateArgs create;
  std::string lsn, at, ttl;
  auto* bc = branch->add_subcommand("create", "Create a branch (O(1): a metadata pointer)");
  bc->add_option("name", create.name, "Branch name")->required();
  bc->add_option("--parent", create.parent, "Parent branch (default main)");
  auto* lsn_opt =
      bc->add_option("--lsn", lsn, "Branch at this LSN (rounded down to a record boundary)");
  auto* at_opt =
      bc->add_option("--at", at, "Branch at this time (RFC 3339, or -5m for 5 minutes ago)");
  lsn_opt->excludes(at_opt);
  bc->add_option("--ttl", ttl, "Delete the branch after this long (e.g. 2h, 7d)");
  std::string from_snapshot;
  auto* fs_opt = bc->add_option("--from-snapshot", from_snapshot,
                                "Start at this snapshot's state (instead of --parent)");
  fs_opt->excludes(lsn_opt)->excludes(at_opt);
  std::string mask;
  bc->add_option("--mask", mask,
                 "Rewrite the new branch's data by these rules (TOML) before anyone gets "
                 "credentials to it");
  bc->callback([&] {
    if (!mask.empty()) create.mask = mask;
    if (!from_snapshot.empty()) create.from_snapshot = from_snapshot;
    if (!lsn.empty()) create.lsn = lsn;
    if (!at.empty()) create.at = at;
    if (!ttl.empty()) create.ttl = ttl;
    action = [&] { return Run(g, [&](auto& c) { return c.BranchCreate(create); }); };
  });
  bool deleted = false, all = false;
  auto* bl = branch->add_subcommand("list", "List branches");
  bl->add_flag("--deleted", deleted, "List the trash: deleted branches that can be undeleted");
  bl->add_flag("--all", all, "Also the internal copies that read-only endpoints and queries serve");
  bl->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.BranchList(deleted, all); }); };
  });
  std::string name;
  auto* bsh = branch->add_subcommand(
      "show", "One branch: parent, sizes, protection, TTL and its restorable range (PITR window)");
  bsh->add_option("name", name)->required();
  bsh->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.BranchShow(name); }); }; });
  bool purge = false;
  auto* bd = branch->add_subcommand(
      "delete",
      "Delete a branch to the trash (undo with undelete; refused if protected or it has "
      "children)");
  bd->add_option("name", name)->required();
  bd->add_flag("--purge", purge, "Free it at once instead (also a branch in the trash)");
  bd->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.BranchDelete(name, purge); }); };
  });
  auto* bu = branch->add_subcommand("undelete", "Bring a deleted branch back from the trash");
  bu->add_option("name", name)->required();
  bu->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.BranchUndelete(name); }); }; });
  bool no_restart = false;
  const char* kNoRestart =
      "Refuse while the branch's endpoint runs, instead of restarting it on the new state";
  auto* br = branch->add_subcommand(
      "reset",
      "Point a branch at its parent's head (refused if protected); its running endpoint "
      "restarts on it with the same port and credentials");
  br->add_option("name", name)->required();
  br->add_flag("--no-restart", no_restart, kNoRestart);
  br->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.BranchReset(name, !no_restart); }); };
  });
  std::string backup_name;
  auto* bs = branch->add_subcommand(
      "restore",
      "Restore a branch in place; the old head is kept; its running endpoint restarts on it "
      "with the same port and credentials");
  bs->add_option("name", name)->required();
  auto* rs_at = bs->add_option("--at", at, "Restore to this time");
  auto* rs_lsn = bs->add_option("--lsn", lsn, "Restore to this LSN");
  rs_at->excludes(rs_lsn);
  std::string restore_snapshot;
  bs->add_option("--snapshot", restore_snapshot, "Restore to this snapshot of the branch")
      ->excludes(rs_at)
      ->excludes(rs_lsn);
  bs->add_option("--backup-name", backup_name,
                 "Name of the branch that keeps the old head (default NAME_old_<time>)");
  bs->add_flag("--no-restart", no_restart, kNoRestart);
  bs->callback([&] {
    action = [&] {
      return Run(g, [&](auto& c) {
        return c.BranchRestore(
            name,
            {.at = at.empty() ? std::nullopt : std::optional<std::string>(at),
             .lsn = lsn.empty() ? std::nullopt : std::optional<std::string>(lsn),
             .snapshot = restore_snapshot.empty() ? std::nullopt
                                                  : std::optional<std::string>(restore_snapshot),
             .backup_name = backup_name,
             .restart = !no_restart});
      });
    };
  });
  for (bool protect : {true, false}) {
    auto* bp =
        branch->add_subcommand(protect ? "protect" : "unprotect",
                               protect ? "Refuse delete, reset and restore" : "Allow them again");
    bp->add_option("name", name)->required();
    bp->callback([&, protect] {
      action = [&, protect] {
        return Run(g, [&](auto& c) { return c.BranchProtect(name, protect); });
      };
    });
  }

  auto* endpoint = app.add_subcommand("endpoint", "Start, stop and list Postgres endpoints");
  endpoint->require_subcommand(1);
  cambium::cli::EndpointStartArgs start;
  auto* es =
      endpoint->add_subcommand("start", "Start Postgres on a branch; prints the connection string");
  es->add_option("branch", start.branch)->required();
  es->add_option("--port", start.port,
                 "Port (default: the endpoint's port of its last start, or a free one); the "
                 "start fails if it is taken");
  es->add_flag("--read-only", start.read_only,
               "Serve an ephemeral copy as a hot standby (Postgres refuses every write)");
  es->add_flag("--follow", start.follow,
               "With --read-only (implied): a read replica that keeps replaying the branch's "
               "commits, streamed from its running endpoint");
  es->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.EndpointStart(start); }); }; });
  auto* et = endpoint->add_subcommand(
      "stop",
      "Stop the endpoint of a branch (or a read-only endpoint by its name); it keeps "
      "its port for the next start. A stopped endpoint: nothing to do, exit 0");
  et->add_option("branch", name)->required();
  et->add_flag("--all", all, "Also the branch's read-only endpoints");
  et->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.EndpointStop(name, all); }); }; });
  endpoint->add_subcommand("list", "List endpoints")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.EndpointList(); }); };
  });
  // The supervisor's restart of a crashed endpoint (tools/supervisor.h): hidden.
  auto* er = endpoint->add_subcommand("recover", "Restart a crashed endpoint (the supervisor's)");
  er->group("");
  er->add_option("name", name)->required();
  er->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.EndpointRecover(name); }); }; });

  bool read_only = false;
  auto* cs = app.add_subcommand("connection-string",
                                "The URL, with the password, of the running endpoint of a branch");
  cs->add_option("branch", name)->required();
  cs->add_flag("--read-only", read_only, "The read-only role's URL");
  cs->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.ConnectionString(name, read_only); }); };
  });

  auto* lsn_cmd = app.add_subcommand("lsn", "The current LSN of a branch, or the LSN of a time");
  lsn_cmd->add_option("branch", name)->required();
  lsn_cmd->add_option("--at", at, "A time");
  lsn_cmd->callback([&] {
    action = [&] {
      return Run(g, [&](auto& c) {
        return c.ShowLsn(name, at.empty() ? std::nullopt : std::optional<std::string>(at));
      });
    };
  });
  std::vector<std::string> sql;
  auto* query = app.add_subcommand(
      "query", "Read-only answer as of a past time: cambium query BRANCH --at T -- SQL");
  query->add_option("branch", name)->required();
  query->add_option("--at", at, "The time")->required();
  query->add_option("sql", sql, "SQL (after --)")->required();
  query->callback([&] {
    action = [&] {
      std::string text;
      for (const auto& part : sql) text += (text.empty() ? "" : " ") + part;
      return Run(g, [&](auto& c) { return c.Query(name, at, text); });
    };
  });

  auto* snapshot = app.add_subcommand(
      "snapshot", "Named, immutable, protected points of a branch (no compute, no copy)");
  snapshot->require_subcommand(1);
  cambium::cli::SnapshotCreateArgs snap;
  auto* sc = snapshot->add_subcommand("create", "Take a snapshot of a branch (default: its head)");
  sc->add_option("branch", snap.branch)->required();
  sc->add_option("--name", snap.name, "Snapshot name (default BRANCH-snap-<time>)");
  auto* sc_at = sc->add_option("--at", at, "At this time");
  auto* sc_lsn = sc->add_option("--lsn", lsn, "At this LSN");
  sc_at->excludes(sc_lsn);
  sc->callback([&] {
    if (!at.empty()) snap.at = at;
    if (!lsn.empty()) snap.lsn = lsn;
    action = [&] { return Run(g, [&](auto& c) { return c.SnapshotCreate(snap); }); };
  });
  snapshot->add_subcommand("list", "List snapshots")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.SnapshotList(); }); };
  });
  auto* sd = snapshot->add_subcommand(
      "delete", "Delete a snapshot to the trash (scope admin; undo with branch undelete)");
  sd->add_option("name", name)->required();
  sd->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.SnapshotDelete(name); }); }; });

  auto* tenant = app.add_subcommand(
      "tenant", "Tenants over the stack's pageservers (placement in etcd; docs/scale-out.md)");
  tenant->require_subcommand(1);
  std::string tenant_name, tenant_ps;
  auto* tnc = tenant->add_subcommand("create", "Create a tenant with branch main on a pageserver");
  tnc->add_option("name", tenant_name)->required();
  tnc->add_option("--pageserver", tenant_ps, "Its pageserver (default: the least loaded)");
  tnc->callback([&] {
    action = [&] {
      return Run(g, [&](auto& c) { return c.TenantCreate(tenant_name, tenant_ps); });
    };
  });
  tenant->add_subcommand("list", "List tenants and the pageserver serving each")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.TenantList(); }); };
  });
  auto* tnm = tenant->add_subcommand(
      "move", "Move a tenant to another pageserver; its endpoints keep running (scope admin)");
  tnm->add_option("name", tenant_name)->required();
  tnm->add_option("--to", tenant_ps, "The pageserver to move it to")->required();
  tnm->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.TenantMove(tenant_name, tenant_ps); }); };
  });

  auto* diff = app.add_subcommand("diff", "Compare two points of history");
  diff->require_subcommand(1);
  std::string diff_a, diff_b;
  auto* ds = diff->add_subcommand(
      "schema",
      "Object-level schema difference of A and B (BRANCH, BRANCH@TIME or BRANCH@LSN); exit 0 "
      "when equal, 1 when different");
  ds->add_option("a", diff_a)->required();
  ds->add_option("b", diff_b)->required();
  ds->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.DiffSchema(diff_a, diff_b); }); };
  });

  cambium::cli::ChangesArgs changes;
  std::string until;
  auto* ch = app.add_subcommand(
      "changes", "Which relations changed between two points (from the WAL, no table scan)");
  ch->add_option("branch", changes.branch)->required();
  ch->add_option("--since", changes.since, "From this time or LSN")->required();
  ch->add_option("--until", until, "Up to this time or LSN (default: the head)");
  ch->add_flag("--system", changes.system, "Also system catalogs");
  std::string rows_table;
  ch->add_option("--rows", rows_table,
                 "Instead: the rows of this table inserted, deleted and updated, by primary key");
  ch->add_option("--limit", changes.limit, "With --rows: at most this many rows (default 1000)")
      ->check(CLI::PositiveNumber);
  ch->add_option("--offset", changes.offset, "With --rows: skip this many rows first")
      ->check(CLI::NonNegativeNumber);
  ch->callback([&] {
    if (!until.empty()) changes.until = until;
    if (!rows_table.empty()) changes.rows = rows_table;
    action = [&] { return Run(g, [&](auto& c) { return c.Changes(changes); }); };
  });

  auto* migrate = app.add_subcommand(
      "migrate", "Rehearse a migration on a temporary branch, then apply it with a snapshot");
  migrate->require_subcommand(1);
  cambium::cli::MigratePrepareArgs prep;
  std::string timeout;
  auto* mp = migrate->add_subcommand(
      "prepare",
      "Apply FILE to a temporary branch of BRANCH's head and report locks, rewrites, the "
      "schema diff and destructive changes; prints the migration id");
  mp->add_option("branch", prep.branch)->required();
  mp->add_option("--file", prep.file, "The SQL file")->required();
  mp->add_option("--timeout", timeout, "Give up after this long (default 10m)");
  mp->callback([&] {
    action = [&] {
      return Run(g, [&](auto& c) -> absl::StatusOr<cambium::cli::Output> {
        if (!timeout.empty()) {
          CAMBIUM_ASSIGN_OR_RETURN(prep.timeout, cambium::ParseHumanDuration(timeout));
        }
        return c.MigratePrepare(prep);
      });
    };
  });
  bool force = false;
  auto* mc = migrate->add_subcommand(
      "complete",
      "Snapshot BRANCH, apply the rehearsed file to it, check the schema equals the "
      "rehearsal's, remove the temporary branch");
  mc->add_option("id", name)->required();
  mc->add_flag("--force", force, "Apply even if the branch changed since prepare");
  mc->callback([&] {
    action = [&] { return Run(g, [&](auto& c) { return c.MigrateComplete(name, force); }); };
  });
  auto* ma = migrate->add_subcommand("abandon", "Remove a prepared migration's temporary branch");
  ma->add_option("id", name)->required();
  ma->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.MigrateAbandon(name); }); }; });
  migrate->add_subcommand("list", "Prepared migrations")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.MigrateList(); }); };
  });

  auto* token = app.add_subcommand("token", "Create, list and revoke API tokens (scope admin)");
  token->require_subcommand(1);
  cambium::cli::TokenCreateArgs token_args;
  std::string token_ttl;
  auto* tc = token->add_subcommand("create", "Create a token; prints its secret once");
  tc->add_option("--scope", token_args.scope, "read, develop or admin")
      ->required()
      ->check(CLI::IsMember({"read", "develop", "admin"}));
  tc->add_option("--branches", token_args.branches,
                 "Branch-name glob patterns it may change (e.g. 'preview-*'); default all")
      ->delimiter(',');
  tc->add_option("--ttl", token_ttl, "Expire after this long (e.g. 7d, 12h)");
  tc->add_option("--description", token_args.description, "What the token is for");
  tc->callback([&] {
    if (!token_ttl.empty()) token_args.ttl = token_ttl;
    action = [&] { return Run(g, [&](auto& c) { return c.TokenCreate(token_args); }); };
  });
  token->add_subcommand("list", "List tokens (never their secrets)")->callback([&] {
    action = [&] { return Run(g, [](auto& c) { return c.TokenList(); }); };
  });
  auto* tr = token->add_subcommand("revoke", "Revoke a token at once");
  tr->add_option("id", name, "Token id (from token list)")->required();
  tr->callback(
      [&] { action = [&] { return Run(g, [&](auto& c) { return c.TokenRevoke(name); }); }; });
  std::string since;
  auto* audit = app.add_subcommand("audit", "The audit log: every management call (scope admin)");
  audit->add_option("--since", since, "Records at or after this time (RFC 3339 or -1h)");
  audit->callback([&] {
    action = [&] {
      return Run(g, [&](auto& c) {
        return c.Audit(since.empty() ? std::nullopt : std::optional<std::string>(since));
      });
    };
  });

  std::string console_listen = "127.0.0.1:7480";
  auto* console = app.add_subcommand(
      "console",
      "A read-only web page on 127.0.0.1: branch tree, commit history with the commands to "
      "query or restore at a time, table previews, endpoints");
  console->add_option("--listen", console_listen,
                      "Address, 127.0.0.1:PORT (port 0: any free port; default 127.0.0.1:7480)");
  console->callback([&] { action = [&] { return Console(g, console_listen); }; });

  // --version, help and unknown commands; then CLI11's own usage errors, as JSON
  // too with --json (tools/cli_usage.h).
  const std::vector<std::string> words = cambium::cli::CommandWords(argc, argv);
  const bool json = cambium::cli::HasFlag(words, "--json");
  if (std::optional<int> code =
          cambium::cli::HandleBeforeParse(app, words, {"--data-dir", "--tenant"}, json)) {
    return *code;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cambium::cli::ReportParseError(app, e, json);
  }
  cambium::cli::SetProgressMode(json                    ? cambium::cli::ProgressMode::kJson
                                : isatty(STDERR_FILENO) ? cambium::cli::ProgressMode::kTerminal
                                                        : cambium::cli::ProgressMode::kNone);
  return action ? action() : 2;
}
