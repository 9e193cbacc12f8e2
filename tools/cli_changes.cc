// Cli: `cambium changes BRANCH --since T1 [--until T2]`: which relations changed
// between two points, and where.
//
// The pageserver answers from the WAL archive between the two points (ListChanges:
// block references, relation creations, truncations and drops; cost proportional to
// the WAL in the range, no table data read). Its answer names relation files; the
// names come from the catalog at the later point (a read-only view there, or the
// branch's running endpoint when the range ends at its head), and for relations
// gone by then from the catalog at the earlier point. Only catalogs are read.
//
// Output per relation: schema-qualified name, kind (table, index, toast, sequence,
// materialized_view), the table a TOAST table or index belongs to, blocks changed,
// first/last change LSN and the time of the commit that made it visible, created /
// dropped / truncated. System catalogs only with --system. --json: NDJSON, a
// "range" line first, then one "relation" line each.
#include <map>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

// Objects with OIDs below this are Postgres' own (FirstNormalObjectId).
constexpr uint32_t kFirstNormalObjectId = 16384;

// A relation as the catalog names it.
struct RelationName {
  std::string name;  // schema.relation
  std::string kind;
  std::string parent;  // the table of an index or TOAST table ("" if none)
  bool system = false;
};

using FileKey = std::pair<uint32_t, uint32_t>;  // (database, relfilenode)

std::string KindOf(const std::string& relkind) {
  if (relkind == "r" || relkind == "p") return "table";
  if (relkind == "i" || relkind == "I") return "index";
  if (relkind == "t") return "toast";
  if (relkind == "S") return "sequence";
  if (relkind == "m") return "materialized_view";
  return "relation";
}

// The catalog's names of `wanted` relation files, per database, through `view`.
absl::Status ResolveNames(const ViewSession& view, const std::set<FileKey>& wanted,
                          std::map<FileKey, RelationName>* names) {
  CAMBIUM_ASSIGN_OR_RETURN(PgConn conn, Connect(view.socket_dir, view.port, kSuperuserRole, ""));
  CAMBIUM_ASSIGN_OR_RETURN(
      json dbs, QueryJson(conn.get(), "SELECT oid, datname FROM pg_database WHERE datallowconn"));
  std::map<uint32_t, std::vector<uint32_t>> by_db;
  for (const auto& [db, file] : wanted) by_db[db].push_back(file);
  for (const auto& row : dbs["rows"]) {
    const uint32_t db = static_cast<uint32_t>(row["oid"].get<int64_t>());
    // Shared catalogs (database 0 in the WAL) are seen from every database: from
    // postgres here.
    if (row["datname"] == "postgres" && by_db.count(0)) {
      by_db[db].insert(by_db[db].end(), by_db[0].begin(), by_db[0].end());
    }
    auto files = by_db.find(db);
    if (files == by_db.end()) continue;
    CAMBIUM_ASSIGN_OR_RETURN(PgConn db_conn, Connect(view.socket_dir, view.port, kSuperuserRole, "",
                                                     row["datname"].get<std::string>()));
    // pg_relation_filenode also maps the mapped catalogs (pg_class itself).
    const std::string sql = absl::StrFormat(
        "SELECT pg_relation_filenode(c.oid) AS file, n.nspname AS nsp, c.relname AS rel, "
        "  c.relkind::text AS kind, c.oid < %d AS system, "
        "  coalesce((SELECT quote_ident(pn.nspname) || '.' || quote_ident(p.relname) "
        "            FROM pg_class p JOIN pg_namespace pn ON pn.oid = p.relnamespace "
        "            WHERE p.reltoastrelid = c.oid "
        "               OR p.oid = (SELECT indrelid FROM pg_index WHERE indexrelid = c.oid) "
        "            LIMIT 1), '') AS parent "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE pg_relation_filenode(c.oid) IN (%s)",
        kFirstNormalObjectId, absl::StrJoin(files->second, ","));
    CAMBIUM_ASSIGN_OR_RETURN(json rels, QueryJson(db_conn.get(), sql));
    for (const auto& r : rels["rows"]) {
      const uint32_t file = static_cast<uint32_t>(r["file"].get<int64_t>());
      const bool shared = by_db.count(0) && wanted.count({0, file}) && !wanted.count({db, file});
      const FileKey key{shared ? 0 : db, file};
      const std::string nsp = r["nsp"].get<std::string>();
      RelationName n{
          .name = nsp + "." + r["rel"].get<std::string>(),
          .kind = KindOf(r["kind"].get<std::string>()),
          .parent = r["parent"].get<std::string>(),
          .system = r["system"].get<bool>() || nsp == "pg_catalog" || nsp == "information_schema"};
      (*names)[key] = n;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ListChangesResponse> Cli::ListChangesRpc(const std::string& branch,
                                                            const PointText& since,
                                                            const std::optional<PointText>& until,
                                                            std::optional<FileKey> blocks_of) {
  CAMBIUM_RETURN_IF_ERROR(RequireStack());
  v1::ListChangesRequest req;
  req.set_tenant(stack_.tenant);
  req.set_branch(branch);
  if (since.lsn) req.set_since_lsn(since.lsn->value());
  if (since.time) req.set_since_unix_micros(absl::ToUnixMicros(*since.time));
  if (until && until->lsn) req.set_until_lsn(until->lsn->value());
  if (until && until->time) req.set_until_unix_micros(absl::ToUnixMicros(*until->time));
  if (blocks_of) {
    req.set_blocks_of_db_oid(blocks_of->first);
    req.set_blocks_of_relfilenode(blocks_of->second);
  }
  return ControlCall(mgmt(), &v1::ManagementService::Stub::ListChanges, req);
}

absl::StatusOr<Output> Cli::Changes(const ChangesArgs& args) {
  CAMBIUM_ASSIGN_OR_RETURN(PointText since, ParsePoint(args.since));
  std::optional<PointText> until_point;
  if (args.until) {
    CAMBIUM_ASSIGN_OR_RETURN(until_point, ParsePoint(*args.until));
  }
  if (args.rows) return ChangedRows(args, since, until_point);
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListChangesResponse resp,
                           ListChangesRpc(args.branch, since, until_point));

  // One entry per relation: its main fork's blocks, every fork's flags.
  struct Entry {
    uint64_t blocks = 0;
    Lsn first, last;
    int64_t first_commit = 0, last_commit = 0;
    bool created = false, dropped = false, truncated = false, any_record = false;
  };
  std::map<FileKey, Entry> entries;
  for (const v1::RelationChange& c : resp.changes()) {
    // The free space map and visibility map forks follow the main fork's changes
    // (vacuum's work): on their own they are no change of the relation's rows.
    if (c.fork() != 0 && !entries.count({c.db_oid(), c.relfilenode()})) continue;
    Entry& e = entries[{c.db_oid(), c.relfilenode()}];
    if (c.fork() == 0) e.blocks = c.blocks_changed();
    if (!e.any_record || Lsn(c.first_lsn()) < e.first) {
      e.first = Lsn(c.first_lsn());
      e.first_commit = c.first_commit_unix_micros();
    }
    if (!e.any_record || Lsn(c.last_lsn()) > e.last) {
      e.last = Lsn(c.last_lsn());
      e.last_commit = c.last_commit_unix_micros();
    }
    e.any_record = true;
    e.created |= c.created() && c.fork() == 0;
    e.dropped |= c.dropped();
    e.truncated |= c.truncated();
  }

  // Names at the later point; what is gone by then, at the earlier one.
  std::map<FileKey, RelationName> names;
  std::set<FileKey> wanted;
  for (const auto& [key, e] : entries) wanted.insert(key);
  const Lsn until(resp.until_lsn());
  ViewSpec later{.branch = args.branch};
  if (args.until) later.lsn = until.ToString();
  if (!wanted.empty()) {
    CAMBIUM_RETURN_IF_ERROR(
        WithView(later, [&](const ViewSession& v) { return ResolveNames(v, wanted, &names); }));
  }
  // Unnamed files that would be listed (a catalog's stays hidden without --system).
  std::set<FileKey> missing;
  for (const FileKey& k : wanted) {
    if (!names.count(k) && (args.system || (k.first != 0 && k.second >= kFirstNormalObjectId))) {
      missing.insert(k);
    }
  }
  if (!missing.empty()) {
    ViewSpec earlier{.branch = args.branch, .lsn = Lsn(resp.since_lsn()).ToString()};
    CAMBIUM_RETURN_IF_ERROR(
        WithView(earlier, [&](const ViewSession& v) { return ResolveNames(v, missing, &names); }));
  }

  Output out{json::array(), ""};
  out.ndjson = true;
  out.json.push_back({{"type", "range"},
                      {"branch", args.branch},
                      {"since_lsn", Lsn(resp.since_lsn()).ToString()},
                      {"until_lsn", until.ToString()},
                      {"since_time", MicrosOrNull(resp.since_commit_unix_micros())},
                      {"until_time", MicrosOrNull(resp.until_commit_unix_micros())},
                      {"wal_bytes_read", resp.wal_bytes_read()},
                      {"records_read", resp.records_read()}});
  out.text = absl::StrFormat("Changes on %s in (%s, %s] (%s of WAL read):\n", args.branch,
                             Lsn(resp.since_lsn()).ToString(), until.ToString(),
                             FormatBytes(resp.wal_bytes_read()));
  out.text += absl::StrFormat("%-44s %-10s %8s %-14s %-14s %s\n", "RELATION", "KIND", "BLOCKS",
                              "FIRST LSN", "LAST LSN", "");
  int hidden = 0;
  for (const auto& [key, e] : entries) {
    auto n = names.find(key);
    const bool known = n != names.end();
    // Files no catalog names: a relation created and dropped between the two
    // points, or a catalog's own file; system unless its OID says otherwise.
    const bool system =
        known ? n->second.system : key.first == 0 || key.second < kFirstNormalObjectId;
    if (system && !args.system) {
      ++hidden;
      continue;
    }
    json j = {{"type", "relation"},
              {"name", known ? json(n->second.name) : json(nullptr)},
              {"kind", known ? n->second.kind : "relation"},
              {"of", known && !n->second.parent.empty() ? json(n->second.parent) : json(nullptr)},
              {"database_oid", key.first},
              {"relfilenode", key.second},
              {"blocks_changed", e.blocks},
              {"first_change_lsn", e.first.ToString()},
              {"last_change_lsn", e.last.ToString()},
              {"first_change_time", MicrosOrNull(e.first_commit)},
              {"last_change_time", MicrosOrNull(e.last_commit)},
              {"created", e.created},
              {"dropped", e.dropped},
              {"truncated", e.truncated},
              {"system", system}};
    out.json.push_back(j);
    std::vector<std::string> flags;
    if (e.created) flags.push_back("created");
    if (e.dropped) flags.push_back("dropped");
    if (e.truncated) flags.push_back("truncated");
    if (!j["of"].is_null()) flags.push_back("of " + j["of"].get<std::string>());
    out.text += absl::StrFormat("%-44s %-10s %8d %-14s %-14s %s\n",
                                known ? n->second.name : absl::StrFormat("(file %d)", key.second),
                                j["kind"].get<std::string>(), e.blocks, e.first.ToString(),
                                e.last.ToString(), absl::StrJoin(flags, ","));
  }
  if (hidden > 0) {
    out.text +=
        absl::StrFormat("(%d system catalog relations changed too; --system lists them)\n", hidden);
  }
  return out;
}

}  // namespace cambium::cli
