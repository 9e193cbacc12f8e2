#include "tools/pg_client.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "tools/cli_usage.h"
#include "tools/workflows/libpq.h"

namespace cambium::cli {
namespace {

using nlohmann::json;
using workflows::PgResult;

// Built-in type OIDs (PostgreSQL's pg_type.dat); others are asked of the catalog.
const std::map<Oid, std::string>& BuiltinTypes() {
  static const auto* types = new std::map<Oid, std::string>{
      {16, "bool"},        {17, "bytea"},         {18, "char"},       {19, "name"},
      {20, "int8"},        {21, "int2"},          {23, "int4"},       {25, "text"},
      {26, "oid"},         {114, "json"},         {700, "float4"},    {701, "float8"},
      {1042, "bpchar"},    {1043, "varchar"},     {1082, "date"},     {1083, "time"},
      {1114, "timestamp"}, {1184, "timestamptz"}, {1186, "interval"}, {1700, "numeric"},
      {2950, "uuid"},      {3802, "jsonb"},       {3220, "pg_lsn"},   {869, "inet"}};
  return *types;
}

json Typed(const std::string& type, const char* text) {
  const std::string v(text);
  if (type == "bool") return v == "t";
  if (type == "int2" || type == "int4" || type == "int8" || type == "oid") {
    int64_t n = 0;
    constexpr int64_t kExact = int64_t{1} << 53;  // what a JSON reader's double holds
    if (absl::SimpleAtoi(v, &n) && n <= kExact && n >= -kExact) return n;
    return v;
  }
  if (type == "float4" || type == "float8") {
    double d = 0;
    if (absl::SimpleAtod(v, &d) && std::isfinite(d)) return d;
    return v;
  }
  if (type == "json" || type == "jsonb") {
    json parsed = json::parse(v, nullptr, /*allow_exceptions=*/false);
    return parsed.is_discarded() ? json(v) : parsed;
  }
  return v;
}

absl::Status SqlError(PGconn* conn, const PGresult* r) {
  auto field = [&](int code) -> std::string {
    const char* f = r ? PQresultErrorField(r, code) : nullptr;
    return f ? f : "";
  };
  std::string message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) message = PQerrorMessage(conn);
  while (!message.empty() && message.back() == '\n') message.pop_back();
  json details = json::object();
  for (const auto& [key, code] : {std::pair<const char*, int>{"sqlstate", PG_DIAG_SQLSTATE},
                                  {"detail", PG_DIAG_MESSAGE_DETAIL},
                                  {"hint", PG_DIAG_MESSAGE_HINT},
                                  {"position", PG_DIAG_STATEMENT_POSITION}}) {
    const std::string v = field(code);
    if (v.empty()) continue;
    int n = 0;
    details[key] = std::string(key) == "position" && absl::SimpleAtoi(v, &n) ? json(n) : json(v);
  }
  absl::Status status = absl::InvalidArgumentError(
      details.contains("sqlstate")
          ? absl::StrFormat("%s (SQLSTATE %s)", message, details["sqlstate"].get<std::string>())
          : message);
  status.SetPayload(kErrorDetailsPayload, absl::Cord(details.dump()));
  return status;
}

}  // namespace

absl::StatusOr<PgConn> Connect(const std::string& host, int port, const std::string& user,
                               const std::string& password, const std::string& dbname) {
  const std::string port_text = std::to_string(port);
  const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
  const char* values[] = {host.c_str(),     port_text.c_str(), user.c_str(),
                          password.c_str(), dbname.c_str(),    "10",
                          nullptr};
  PgConn conn(PQconnectdbParams(keys, values, 0));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    return absl::UnavailableError(
        absl::StrFormat("connect to postgres at %s port %d as %s: %s", host, port, user,
                        conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  // Notices ("already a member of role") are not the user's business.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

absl::StatusOr<json> QueryJson(PGconn* conn, const std::string& sql) {
  PgResult r(PQexec(conn, sql.c_str()));
  const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
    return SqlError(conn, r.get());
  }
  const int fields = PQnfields(r.get());
  // Type names: built-in ones known here, the rest from the catalog in one query.
  std::map<Oid, std::string> types = BuiltinTypes();
  std::set<Oid> unknown;
  for (int i = 0; i < fields; ++i) {
    if (!types.count(PQftype(r.get(), i))) unknown.insert(PQftype(r.get(), i));
  }
  if (!unknown.empty()) {
    const std::string q =
        absl::StrCat("SELECT oid, format_type(oid, NULL) FROM pg_type WHERE oid IN (",
                     absl::StrJoin(unknown, ","), ")");
    PgResult t(PQexec(conn, q.c_str()));
    if (t && PQresultStatus(t.get()) == PGRES_TUPLES_OK) {
      for (int row = 0; row < PQntuples(t.get()); ++row) {
        uint32_t oid = 0;
        if (absl::SimpleAtoi(PQgetvalue(t.get(), row, 0), &oid)) {
          types[oid] = PQgetvalue(t.get(), row, 1);
        }
      }
    }
  }
  json columns = json::array();
  std::vector<std::string> keys;
  std::set<std::string> used;
  for (int i = 0; i < fields; ++i) {
    const std::string name = PQfname(r.get(), i);
    std::string key = name;
    for (int n = 2; used.count(key); ++n) key = absl::StrCat(name, "_", n);
    used.insert(key);
    keys.push_back(key);
    auto type = types.find(PQftype(r.get(), i));
    json column = {
        {"name", name},
        {"type", type != types.end() ? type->second : absl::StrCat("oid ", PQftype(r.get(), i))}};
    if (key != name) column["key"] = key;
    columns.push_back(std::move(column));
  }
  json rows = json::array();
  for (int row = 0; row < PQntuples(r.get()); ++row) {
    json values = json::object();
    for (int i = 0; i < fields; ++i) {
      values[keys[i]] = PQgetisnull(r.get(), row, i)
                            ? json(nullptr)
                            : Typed(columns[i]["type"], PQgetvalue(r.get(), row, i));
    }
    rows.push_back(std::move(values));
  }
  const char* tuples = PQcmdTuples(r.get());
  int64_t count = 0;
  if (st == PGRES_TUPLES_OK) {
    count = PQntuples(r.get());
  } else if (tuples != nullptr && *tuples != '\0') {
    (void)absl::SimpleAtoi(tuples, &count);
  }
  return json{{"command", PQcmdStatus(r.get())},
              {"row_count", count},
              {"columns", columns},
              {"rows", rows}};
}

std::string FormatTable(const json& result) {
  const json& columns = result["columns"];
  if (columns.empty()) return result["command"].get<std::string>() + "\n";
  auto text = [](const json& v) {
    if (v.is_null()) return std::string();
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return std::string(v.get<bool>() ? "t" : "f");
    return v.dump();
  };
  std::vector<size_t> width;
  for (const auto& c : columns) width.push_back(c["name"].get<std::string>().size());
  std::vector<std::vector<std::string>> cells;
  for (const auto& row : result["rows"]) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      line.push_back(text(row[columns[i].value("key", columns[i]["name"].get<std::string>())]));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  for (size_t i = 0; i < columns.size(); ++i) {
    out +=
        absl::StrFormat("%s%-*s", i ? " | " : " ", width[i], columns[i]["name"].get<std::string>());
  }
  out += "\n";
  for (size_t i = 0; i < columns.size(); ++i) {
    out += (i ? "+" : "") + std::string(width[i] + 2, '-');
  }
  out += "\n";
  for (const auto& line : cells) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += absl::StrFormat("%s%-*s", i ? " | " : " ", width[i], line[i]);
    }
    out += "\n";
  }
  const size_t n = cells.size();
  out += absl::StrFormat("(%d row%s)\n", n, n == 1 ? "" : "s");
  return out;
}

}  // namespace cambium::cli
