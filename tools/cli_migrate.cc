// Cli: migration rehearsal (`cambium migrate prepare | complete | abandon | list`;
// docs/workflows.md).
//
// prepare: a temporary branch at BRANCH's exact head gets an endpoint; the file runs
// there as the branch's owner role (tools/workflows/migration_runner.h: one
// transaction unless a statement cannot run in one), and the report says per
// statement its time, the strongest lock on each relation and the tables it
// rewrote, then the schema diff and the destructive changes. The temporary branch
// stays (its connection string is in the report, for tests) until complete or
// abandon. The state is DATA/migrations/ID.json.
//
// complete: refuses if BRANCH changed since prepare (user relations written, or a
// schema different from the one rehearsed on) unless --force; takes a snapshot of
// BRANCH's head; applies the same file to BRANCH (as its owner: a protected branch
// needs scope admin); checks that the schema equals the rehearsal's and says what
// differs; removes the temporary branch. A failing statement rolls the transaction
// back: BRANCH is as before (and the snapshot restores it in any case).
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/files.h"
#include "common/ids.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"
#include "tools/workflows/migration_runner.h"
#include "tools/workflows/schema_catalog.h"
#include "tools/workflows/schema_diff.h"
#include "tools/workflows/sql_script.h"

namespace cambium::cli {
namespace {

using nlohmann::json;
using workflows::SchemaObject;

constexpr char kPrepared[] = "prepared";
constexpr char kFailed[] = "failed";  // the rehearsal failed
constexpr char kCompleted[] = "completed";
constexpr char kFailedOnTarget[] = "failed_on_target";
constexpr char kAbandoned[] = "abandoned";

json SchemaToJson(const std::vector<SchemaObject>& schema) {
  json out = json::array();
  for (const SchemaObject& o : schema) {
    out.push_back({{"kind", o.kind}, {"name", o.name}, {"definition", o.definition}});
  }
  return out;
}

std::vector<SchemaObject> SchemaFromJson(const json& j) {
  std::vector<SchemaObject> out;
  for (const json& o : j) {
    out.push_back({.kind = o.at("kind"), .name = o.at("name"), .definition = o.at("definition")});
  }
  return out;
}

absl::StatusOr<std::vector<SchemaObject>> SchemaOver(const std::string& socket_dir, int port) {
  CAMBIUM_ASSIGN_OR_RETURN(PgConn conn, Connect(socket_dir, port, kSuperuserRole, ""));
  return workflows::ReadSchema(conn.get());
}

std::string NewId() {
  return absl::StrFormat("mig-%s-%04x",
                         absl::FormatTime("%Y%m%d%H%M%S", absl::Now(), absl::UTCTimeZone()),
                         static_cast<unsigned>(absl::ToUnixNanos(absl::Now()) & 0xFFFF));
}

}  // namespace

std::string Cli::MigrationFile(const std::string& id) const {
  return dir_.Sub("migrations/" + id + ".json");
}

absl::StatusOr<json> Cli::LoadMigration(const std::string& id) {
  CAMBIUM_RETURN_IF_ERROR(ValidateName("migration id", id));
  absl::StatusOr<std::string> text = ReadFileToString(MigrationFile(id));
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrFormat("no migration %s (cambium migrate list shows them)", id));
  }
  json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrFormat("%s is not valid JSON", MigrationFile(id)));
  }
  return j;
}

absl::Status Cli::SaveMigration(const json& state) {
  std::error_code ec;
  std::filesystem::create_directories(dir_.Sub("migrations"), ec);
  return WriteFileAtomically(MigrationFile(state.at("id")), state.dump(2) + "\n");
}

absl::StatusOr<workflows::MigrationReport> Cli::ApplyMigration(const EndpointState& ep,
                                                               const std::string& sql,
                                                               absl::Duration timeout) {
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<workflows::SqlStatement> statements,
                           workflows::SplitSql(sql));
  // As the branch's owner, as the application would: GetCredentials enforces the
  // scope (develop on an unprotected branch, admin on a protected one).
  CAMBIUM_ASSIGN_OR_RETURN(v1::Credentials owner, GetCredentials(ep.name, /*read_only=*/false));
  CAMBIUM_ASSIGN_OR_RETURN(PgConn conn,
                           Connect("127.0.0.1", ep.port, owner.user(), owner.password()));
  return workflows::RunMigration(conn.get(), statements, {.timeout = timeout});
}

absl::StatusOr<Output> Cli::MigratePrepare(const MigratePrepareArgs& args) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  absl::StatusOr<std::string> sql = ReadFileToString(args.file);
  if (!sql.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot read migration file %s: %s", args.file, sql.status().message()));
  }
  // A file that does not split into statements is refused before anything exists.
  absl::StatusOr<std::vector<workflows::SqlStatement>> statements = workflows::SplitSql(*sql);
  if (!statements.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s", args.file, statements.status().message()));
  }
  if (statements->empty()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s holds no SQL statement", args.file));
  }
  const std::string id = NewId();
  const std::string temp = NameWithSuffix(args.branch, "-" + id);
  // The exact head: every commit acknowledged before this command.
  CAMBIUM_ASSIGN_OR_RETURN(v1::GetHeadResponse head, ExactHead(args.branch));
  const std::string base_lsn = Lsn(head.lsn()).ToString();
  ReportProgress("migrate", "rehearsing on temporary branch " + temp + " of " + args.branch +
                                " at " + base_lsn);
  CAMBIUM_RETURN_IF_ERROR(
      CreateBranch(temp, args.branch, base_lsn, std::nullopt, absl::Hours(24 * 7)).status());
  json state = {{"id", id},
                {"branch", args.branch},
                {"temporary_branch", temp},
                {"base_lsn", base_lsn},
                {"file", std::filesystem::absolute(args.file).string()},
                {"sql", *sql},
                {"created", FormatTimestamp(absl::Now())},
                {"timeout_seconds", absl::ToInt64Seconds(args.timeout)},
                {"status", kFailed}};
  // From here on the state is saved whatever happens: abandon removes the branch.
  absl::StatusOr<Output> started = EndpointStart({.branch = temp});
  absl::StatusOr<std::optional<EndpointState>> ep =
      started.ok() ? RunningEndpoint(temp) : started.status();
  if (ep.ok() && !ep->has_value()) ep = absl::UnavailableError("the endpoint stopped");
  absl::StatusOr<std::vector<SchemaObject>> before =
      ep.ok() ? SchemaOver(dir_.EndpointRuntimeDir(temp), (*ep)->port) : ep.status();
  absl::StatusOr<workflows::MigrationReport> report =
      before.ok() ? ApplyMigration(**ep, *sql, args.timeout) : before.status();
  absl::StatusOr<std::vector<SchemaObject>> after =
      report.ok() ? SchemaOver(dir_.EndpointRuntimeDir(temp), (*ep)->port) : report.status();
  if (!after.ok()) {
    (void)SaveMigration(state);
    return absl::Status(after.status().code(),
                        absl::StrFormat("the rehearsal of migration %s on %s did not run: %s "
                                        "(`cambium migrate abandon %s` removes it)",
                                        id, temp, after.status().message(), id));
  }
  const std::vector<workflows::SchemaChange> diff = workflows::DiffSchemas(*before, *after);
  const std::vector<std::string> warnings = workflows::DestructiveWarnings(diff);
  state["status"] = report->ok ? kPrepared : kFailed;
  state["schema_before"] = SchemaToJson(*before);
  state["schema_after"] = SchemaToJson(*after);
  CAMBIUM_RETURN_IF_ERROR(SaveMigration(state));

  Output out;
  out.json = {{"id", id},
              {"branch", args.branch},
              {"temporary_branch", temp},
              {"base_lsn", base_lsn},
              {"connection_string", started->json.value("connection_string", json(nullptr))},
              {"ok", report->ok},
              {"status", state["status"]},
              {"report", workflows::ToJson(*report)},
              {"schema_diff", workflows::ToJson(diff)},
              {"warnings", warnings}};
  out.text = absl::StrFormat("Migration %s rehearsed on %s (a branch of %s at %s):\n\n", id, temp,
                             args.branch, base_lsn);
  out.text += workflows::FormatReport(*report);
  out.text += "\n" + (diff.empty() ? std::string("No schema change.\n")
                                   : workflows::FormatDiff(diff, args.branch, temp));
  for (const std::string& w : warnings) out.text += "WARNING: " + w + "\n";
  out.text += absl::StrFormat("\nTest it at %s\n",
                              started->json.value("connection_string", std::string("-")));
  out.text += report->ok
                  ? absl::StrFormat("Apply it with `cambium migrate complete %s`.\n", id)
                  : absl::StrFormat("It failed; `cambium migrate abandon %s` removes it.\n", id);
  out.exit_code = report->ok ? 0 : 1;
  return out;
}

absl::StatusOr<std::vector<std::string>> Cli::ChangedSince(const std::string& branch,
                                                           const std::string& base_lsn,
                                                           const json& schema_before) {
  std::vector<std::string> moved;
  // User relations written since (relation files of objects Postgres did not make).
  absl::StatusOr<Output> changes = Changes({.branch = branch, .since = base_lsn});
  CAMBIUM_RETURN_IF_ERROR(changes.status());
  for (const json& line : changes->json) {
    if (line.value("type", "") != "relation") continue;
    moved.push_back(absl::StrFormat(
        "%s written", line["name"].is_string() ? line["name"].get<std::string>()
                                               : "relation file " + line["relfilenode"].dump()));
  }
  // And the schema: DDL that rewrites nothing still changes what the file meets.
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<SchemaObject> now, ReadSchemaAt({.branch = branch}));
  for (const workflows::SchemaChange& c :
       workflows::DiffSchemas(SchemaFromJson(schema_before), now)) {
    moved.push_back(absl::StrFormat("%s %s %s", c.kind, c.name,
                                    workflows::ToJson({c})[0].value("change", "changed")));
  }
  return moved;
}

absl::StatusOr<Output> Cli::MigrateComplete(const std::string& id, bool force) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  CAMBIUM_ASSIGN_OR_RETURN(json state, LoadMigration(id));
  const std::string branch = state.at("branch");
  const std::string temp = state.at("temporary_branch");
  if (state.at("status") != kPrepared) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "migration %s is %s, not prepared: only a rehearsal that succeeded is applied", id,
        state.at("status").get<std::string>()));
  }
  CAMBIUM_ASSIGN_OR_RETURN(std::vector<std::string> moved,
                           ChangedSince(branch, state.at("base_lsn"), state.at("schema_before")));
  if (!moved.empty() && !force) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "branch %s changed since migration %s was rehearsed at %s (%s); nothing was applied. "
        "Prepare it again, or apply it anyway with --force",
        branch, id, state.at("base_lsn").get<std::string>(), absl::StrJoin(moved, "; ")));
  }
  // The branch's endpoint: started for this if it was not running, stopped after.
  CAMBIUM_ASSIGN_OR_RETURN(std::optional<EndpointState> ep, RunningEndpoint(branch));
  const bool started_here = !ep.has_value();
  if (started_here) {
    CAMBIUM_RETURN_IF_ERROR(EndpointStart({.branch = branch}).status());
    CAMBIUM_ASSIGN_OR_RETURN(ep, RunningEndpoint(branch));
    if (!ep) return absl::UnavailableError("the endpoint of " + branch + " did not stay up");
  }
  // Protected or not: a migration is the kind of change the snapshot is for.
  CAMBIUM_ASSIGN_OR_RETURN(std::string snapshot,
                           TakeSafetySnapshot(branch, "migrate", /*even_if_protected=*/true));
  ReportProgress("migrate", "applying migration " + id + " to " + branch);
  absl::StatusOr<workflows::MigrationReport> report = ApplyMigration(
      *ep, state.at("sql"), absl::Seconds(state.value("timeout_seconds", int64_t{600})));
  absl::StatusOr<std::vector<SchemaObject>> after =
      report.ok() ? SchemaOver(dir_.EndpointRuntimeDir(branch), ep->port) : report.status();
  if (started_here) (void)EndpointStop(branch, false);
  CAMBIUM_RETURN_IF_ERROR(after.status());

  Output out;
  out.json = {{"id", id},
              {"branch", branch},
              {"snapshot", snapshot},
              {"ok", report->ok},
              {"report", workflows::ToJson(*report)},
              {"forced", !moved.empty()},
              {"changed_since_prepare", moved}};
  out.text = absl::StrFormat(
      "Snapshot %s keeps %s as it was (`cambium branch restore %s "
      "--snapshot %s`).\n",
      snapshot, branch, branch, snapshot);
  out.text += workflows::FormatReport(*report);
  if (!report->ok) {
    state["status"] = kFailedOnTarget;
    (void)SaveMigration(state);
    out.json["status"] = kFailedOnTarget;
    out.text += absl::StrFormat("Migration %s failed on %s; the rehearsal branch %s stays.\n", id,
                                branch, temp);
    out.exit_code = 1;
    return out;
  }
  const std::vector<workflows::SchemaChange> differences =
      workflows::DiffSchemas(SchemaFromJson(state.at("schema_after")), *after);
  out.json["schema_matches_rehearsal"] = differences.empty();
  out.json["differences"] = workflows::ToJson(differences);
  if (differences.empty()) {
    out.text += absl::StrFormat("The schema of %s is the rehearsed one.\n", branch);
  } else {
    out.text += "The schema differs from the rehearsal's:\n" +
                workflows::FormatDiff(differences, "rehearsal", branch);
  }
  // The rehearsal is done with: its branch goes (endpoint first).
  (void)EndpointStop(temp, /*all=*/true);
  absl::Status removed = DeleteBranchRpc(temp);
  out.json["temporary_branch_removed"] = removed.ok();
  state["status"] = kCompleted;
  state["snapshot"] = snapshot;
  state["completed"] = FormatTimestamp(absl::Now());
  CAMBIUM_RETURN_IF_ERROR(SaveMigration(state));
  out.json["status"] = kCompleted;
  return out;
}

absl::StatusOr<Output> Cli::MigrateAbandon(const std::string& id) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  CAMBIUM_ASSIGN_OR_RETURN(json state, LoadMigration(id));
  const std::string temp = state.at("temporary_branch");
  if (state.at("status") == kCompleted || state.at("status") == kAbandoned) {
    return Output{{{"id", id}, {"status", state.at("status")}},
                  absl::StrFormat("Migration %s is %s already.\n", id,
                                  state.at("status").get<std::string>())};
  }
  CAMBIUM_RETURN_IF_ERROR(EndpointStop(temp, /*all=*/true).status());
  absl::Status removed = DeleteBranchRpc(temp);
  if (!removed.ok() && !absl::IsNotFound(removed)) return removed;
  state["status"] = kAbandoned;
  CAMBIUM_RETURN_IF_ERROR(SaveMigration(state));
  return Output{{{"id", id}, {"status", kAbandoned}, {"temporary_branch", temp}},
                absl::StrFormat("Abandoned migration %s; branch %s is gone.\n", id, temp)};
}

absl::StatusOr<Output> Cli::MigrateList() {
  Output out{json::array(), absl::StrFormat("%-28s %-20s %-17s %-14s %s\n", "ID", "BRANCH",
                                            "STATUS", "BASE LSN", "FILE")};
  std::error_code ec;
  std::vector<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(dir_.Sub("migrations"), ec)) {
    if (e.path().extension() == ".json") ids.push_back(e.path().stem().string());
  }
  std::sort(ids.begin(), ids.end());
  for (const std::string& id : ids) {
    CAMBIUM_ASSIGN_OR_RETURN(json s, LoadMigration(id));
    json j = {{"id", id},
              {"branch", s.value("branch", "")},
              {"temporary_branch", s.value("temporary_branch", "")},
              {"status", s.value("status", "")},
              {"base_lsn", s.value("base_lsn", "")},
              {"file", s.value("file", "")},
              {"created", s.value("created", "")},
              {"snapshot", s.value("snapshot", json(nullptr))}};
    out.text += absl::StrFormat("%-28s %-20s %-17s %-14s %s\n", id, j["branch"].get<std::string>(),
                                j["status"].get<std::string>(), j["base_lsn"].get<std::string>(),
                                j["file"].get<std::string>());
    out.json.push_back(std::move(j));
  }
  return out;
}

}  // namespace cambium::cli
