// Cli: `cambium changes BRANCH --since T1 [--until T2] --rows TABLE`: the rows of one
// table inserted, deleted and updated between the two points, by primary key, with
// their values before and after (paged with --limit and --offset).
//
// Reading only what changed: an insert, an update or a delete writes the page of
// every row version it adds or ends (an update sets the old version's xmax on its
// page), so every row that differs between the two points lives, at one point or the
// other, in a block the WAL shows changed. The pageserver lists those blocks
// (ListChanges with blocks_of_*); the rows of just those blocks are read at both
// points (TID range scans on two read-only views) and compared by key. When the
// table's file differs between the points (rewritten, created or dropped in the
// range) or too many blocks changed, every row is compared instead, and the answer
// says so ("compared": "all_rows").
#include <algorithm>
#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/pg_roles.h"
#include "common/service.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/cli_util.h"
#include "tools/pg_client.h"
#include "tools/workflows/libpq.h"

namespace cambium::cli {
namespace {

using nlohmann::json;

// Past this many contiguous block ranges, one scan of the table is cheaper than a
// query with a TID range scan per range.
constexpr size_t kMaxRanges = 2000;

struct TableAt {
  bool exists = false;
  std::string name;  // schema.table, quoted
  uint32_t db = 0;
  uint32_t file = 0;
  std::vector<std::string> key;  // primary key columns, in order
};

// key (JSON array text) -> row (JSON object text)
using Rows = std::map<std::string, std::string>;

absl::StatusOr<TableAt> DescribeTable(PGconn* conn, const std::string& table) {
  const std::string sql = absl::StrFormat(
      "SELECT c.oid IS NOT NULL AS found, "
      "  quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS name, "
      "  (SELECT oid FROM pg_database WHERE datname = current_database()) AS db, "
      "  pg_relation_filenode(c.oid) AS file, "
      "  (SELECT json_agg(a.attname ORDER BY k.ord) FROM pg_index i "
      "     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
      "     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "   WHERE i.indrelid = c.oid AND i.indisprimary) AS key "
      "FROM (SELECT to_regclass(%s) AS oid) r "
      "LEFT JOIN pg_class c ON c.oid = r.oid AND c.relkind IN ('r', 'p', 'm') "
      "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace",
      workflows::QuoteLiteral(conn, table));
  CAMBIUM_ASSIGN_OR_RETURN(json r, QueryJson(conn, sql));
  TableAt t;
  const json& row = r["rows"][0];
  if (!row["found"].get<bool>()) return t;
  t.exists = true;
  t.name = row["name"];
  t.db = static_cast<uint32_t>(row["db"].get<int64_t>());
  t.file = static_cast<uint32_t>(row["file"].get<int64_t>());
  if (row["key"].is_array()) {
    for (const json& k : row["key"]) t.key.push_back(k);
  }
  return t;
}

// Contiguous [first, last + 1) ranges of ascending `blocks`.
std::vector<std::pair<uint32_t, uint32_t>> Ranges(const std::vector<uint32_t>& blocks) {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  for (uint32_t b : blocks) {
    if (!out.empty() && out.back().second == b) {
      ++out.back().second;
    } else {
      out.emplace_back(b, b + 1);
    }
  }
  return out;
}

// The rows of `t` in `blocks` (all rows if none given), by key.
absl::StatusOr<Rows> FetchRows(PGconn* conn, const TableAt& t,
                               const std::optional<std::vector<uint32_t>>& blocks) {
  Rows rows;
  if (!t.exists) return rows;
  std::vector<std::string> key_cols;
  for (const std::string& k : t.key) {
    key_cols.push_back("r." + workflows::QuoteIdent(conn, k));
  }
  const std::string select =
      absl::StrFormat("SELECT json_build_array(%s)::text AS k, row_to_json(r)::text AS v FROM %s r",
                      absl::StrJoin(key_cols, ", "), t.name);
  std::vector<std::string> parts;
  if (!blocks) {
    parts.push_back(select);
  } else {
    for (const auto& [first, end] : Ranges(*blocks)) {
      parts.push_back(absl::StrFormat("%s WHERE r.ctid >= '(%d,0)'::tid AND r.ctid < '(%d,0)'::tid",
                                      select, first, end));
    }
  }
  if (parts.empty()) return rows;
  CAMBIUM_ASSIGN_OR_RETURN(json r, QueryJson(conn, absl::StrJoin(parts, " UNION ALL ")));
  for (const json& row : r["rows"]) rows[row["k"].get<std::string>()] = row["v"].get<std::string>();
  return rows;
}

json KeyObject(const TableAt& t, const std::string& key_text) {
  json values = json::parse(key_text, nullptr, false);
  json out = json::object();
  for (size_t i = 0; i < t.key.size() && values.is_array() && i < values.size(); ++i) {
    out[t.key[i]] = values[i];
  }
  return out;
}

}  // namespace

absl::StatusOr<Output> Cli::ChangedRows(const ChangesArgs& args, const PointText& since_point,
                                        const std::optional<PointText>& until_point) {
  // The two points resolved as ListChanges resolves them, by empty ranges (nothing
  // decoded): the WAL is read once, below, for the table's blocks.
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListChangesResponse from,
                           ListChangesRpc(args.branch, since_point, since_point));
  PointText head;
  if (!until_point) {
    CAMBIUM_ASSIGN_OR_RETURN(v1::GetHeadResponse h, ExactHead(args.branch));
    head.lsn = Lsn(h.lsn());
  }
  const PointText& until_text = until_point ? *until_point : head;
  CAMBIUM_ASSIGN_OR_RETURN(v1::ListChangesResponse to,
                           ListChangesRpc(args.branch, until_text, until_text));
  const Lsn since(from.since_lsn()), until(to.until_lsn());
  if (since > until) {
    return absl::InvalidArgumentError(
        absl::StrFormat("the range is reversed: since resolves to %s, after until at %s",
                        since.ToString(), until.ToString()));
  }
  ViewSpec later{.branch = args.branch};
  if (args.until) later.lsn = until.ToString();
  const ViewSpec earlier{.branch = args.branch, .lsn = since.ToString()};
  TableAt before, after;
  Rows rows_before, rows_after;
  std::string compared = "changed_blocks";
  uint64_t blocks_read = 0;
  CAMBIUM_RETURN_IF_ERROR(WithView(later, [&](const ViewSession& lv) -> absl::Status {
    CAMBIUM_ASSIGN_OR_RETURN(PgConn l, Connect(lv.socket_dir, lv.port, kSuperuserRole, ""));
    CAMBIUM_ASSIGN_OR_RETURN(after, DescribeTable(l.get(), *args.rows));
    return WithView(earlier, [&](const ViewSession& ev) -> absl::Status {
      CAMBIUM_ASSIGN_OR_RETURN(PgConn e, Connect(ev.socket_dir, ev.port, kSuperuserRole, ""));
      CAMBIUM_ASSIGN_OR_RETURN(before, DescribeTable(e.get(), *args.rows));
      if (!before.exists && !after.exists) {
        return absl::NotFoundError(absl::StrFormat("no table %s on %s at %s or at %s", *args.rows,
                                                   args.branch, since.ToString(),
                                                   until.ToString()));
      }
      const TableAt& t = after.exists ? after : before;
      if (t.key.empty() || (before.exists && after.exists && before.key != after.key)) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "table %s has no primary key (the same at both points): --rows compares rows by it",
            t.name));
      }
      std::optional<std::vector<uint32_t>> blocks;
      if (before.exists && after.exists && before.file == after.file) {
        CAMBIUM_ASSIGN_OR_RETURN(
            v1::ListChangesResponse resp,
            ListChangesRpc(args.branch, {.lsn = since}, PointText{.lsn = until},
                           std::make_pair(after.db, after.file)));
        blocks.emplace();
        bool truncated = false;
        for (const v1::RelationChange& c : resp.changes()) {
          if (c.db_oid() != after.db || c.relfilenode() != after.file || c.fork() != 0) continue;
          blocks->assign(c.blocks().begin(), c.blocks().end());
          truncated = c.blocks_truncated();
        }
        if (truncated || Ranges(*blocks).size() > kMaxRanges) blocks.reset();
      }
      if (!blocks) compared = "all_rows";
      blocks_read = blocks ? blocks->size() : 0;
      CAMBIUM_ASSIGN_OR_RETURN(rows_before, FetchRows(e.get(), before, blocks));
      CAMBIUM_ASSIGN_OR_RETURN(rows_after, FetchRows(l.get(), after, blocks));
      return absl::OkStatus();
    });
  }));

  // Changes by key, in key order.
  const TableAt& t = after.exists ? after : before;
  std::vector<json> changes;
  auto parse = [](const std::string& s) { return json::parse(s, nullptr, false); };
  for (const auto& [key, row] : rows_before) {
    auto now = rows_after.find(key);
    if (now == rows_after.end()) {
      changes.push_back({{"type", "row"},
                         {"change", "deleted"},
                         {"key", KeyObject(t, key)},
                         {"before", parse(row)},
                         {"after", nullptr}});
    } else if (now->second != row) {
      changes.push_back({{"type", "row"},
                         {"change", "updated"},
                         {"key", KeyObject(t, key)},
                         {"before", parse(row)},
                         {"after", parse(now->second)}});
    }
  }
  for (const auto& [key, row] : rows_after) {
    if (!rows_before.count(key)) {
      changes.push_back({{"type", "row"},
                         {"change", "inserted"},
                         {"key", KeyObject(t, key)},
                         {"before", nullptr},
                         {"after", parse(row)}});
    }
  }
  std::sort(changes.begin(), changes.end(),
            [](const json& a, const json& b) { return a["key"].dump() < b["key"].dump(); });

  Output out{json::array(), ""};
  out.ndjson = true;
  out.json.push_back({{"type", "range"},
                      {"branch", args.branch},
                      {"table", t.name},
                      {"since_lsn", since.ToString()},
                      {"until_lsn", until.ToString()},
                      {"since_time", MicrosOrNull(from.since_commit_unix_micros())},
                      {"until_time", MicrosOrNull(to.until_commit_unix_micros())},
                      {"compared", compared},
                      {"blocks_read", blocks_read},
                      {"rows_read", rows_before.size() + rows_after.size()},
                      {"total_changes", changes.size()},
                      {"offset", args.offset},
                      {"limit", args.limit}});
  out.text = absl::StrFormat(
      "Rows of %s on %s changed in (%s, %s]: %d (%s; %d rows read); showing %d from %d\n", t.name,
      args.branch, since.ToString(), until.ToString(), changes.size(),
      compared == "all_rows" ? "every row compared" : absl::StrFormat("%d blocks", blocks_read),
      rows_before.size() + rows_after.size(),
      std::min<int64_t>(args.limit,
                        std::max<int64_t>(0, static_cast<int64_t>(changes.size()) - args.offset)),
      args.offset);
  for (size_t i = args.offset;
       i < changes.size() && i < static_cast<size_t>(args.offset + args.limit); ++i) {
    const json& c = changes[i];
    const std::string change = c["change"];
    out.text += absl::StrFormat("%s %s",
                                change == "inserted"  ? "+"
                                : change == "deleted" ? "-"
                                                      : "~",
                                c["key"].dump());
    if (!c["before"].is_null()) out.text += " before " + c["before"].dump();
    if (!c["after"].is_null()) out.text += " after " + c["after"].dump();
    out.text += "\n";
    out.json.push_back(c);
  }
  return out;
}

}  // namespace cambium::cli
