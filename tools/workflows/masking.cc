#include "tools/workflows/masking.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "toml++/toml.h"
#include "tools/workflows/libpq.h"

namespace cambium::workflows {
namespace {

bool KnownFunction(const std::string& f) {
  return std::find_if(std::begin(kMaskFunctions), std::end(kMaskFunctions),
                      [&](const char* k) { return f == k; }) != std::end(kMaskFunctions);
}

// A column as the catalog describes it.
struct Column {
  std::string table;   // quoted schema.table
  std::string type;    // format_type
  std::string base;    // the type's name: text, varchar, bpchar, citext, ...
  int max_length = 0;  // varchar(n) / char(n); 0 = none
  bool not_null = false;
};

absl::StatusOr<std::optional<Column>> DescribeColumn(PGconn* conn, const MaskRule& rule) {
  const std::string table =
      rule.table.find('.') == std::string::npos ? "public." + rule.table : rule.table;
  const std::string sql = absl::StrFormat(
      "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
      "  format_type(a.atttypid, a.atttypmod), t.typname, "
      "  CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 "
      "       THEN a.atttypmod - 4 ELSE 0 END, a.attnotnull "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped AND a.attnum > 0 "
      "JOIN pg_type t ON t.oid = a.atttypid "
      "WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p') AND a.attname = %s",
      QuoteLiteral(conn, table), QuoteLiteral(conn, rule.column));
  PgResult r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    return absl::UnavailableError(absl::StrFormat("reading the catalog for %s.%s: %s", table,
                                                  rule.column, PQresultErrorMessage(r.get())));
  }
  if (PQntuples(r.get()) == 0) return std::nullopt;
  return Column{.table = PQgetvalue(r.get(), 0, 0),
                .type = PQgetvalue(r.get(), 0, 1),
                .base = PQgetvalue(r.get(), 0, 2),
                .max_length = std::atoi(PQgetvalue(r.get(), 0, 3)),
                .not_null = std::string(PQgetvalue(r.get(), 0, 4)) == "t"};
}

bool IsText(const Column& c) {
  return c.base == "text" || c.base == "varchar" || c.base == "bpchar" || c.base == "citext";
}

// The SQL expression that replaces column `col` (quoted) under `rule`.
std::string Expression(PGconn* conn, const MaskRule& rule, const Column& c, const std::string& col,
                       const std::string& salt) {
  // The hash every generator draws from: SHA-256 of salt || value.
  const std::string h =
      absl::StrFormat("sha256(convert_to(%s || %s::text, 'UTF8'))", QuoteLiteral(conn, salt), col);
  std::string e;
  if (rule.function == "null") return "NULL";
  if (rule.function == "value")
    return absl::StrFormat("%s::%s", QuoteLiteral(conn, *rule.value), c.type);
  if (rule.function == "hash") {
    e = absl::StrFormat("encode(%s, 'hex')", h);
  } else if (rule.function == "fake_email") {
    e = absl::StrFormat("'user_' || left(encode(%s, 'hex'), 12) || '@example.com'", h);
  } else if (rule.function == "fake_name") {
    e = absl::StrFormat(
        "(ARRAY['Alex','Sam','Robin','Kim','Jordan','Taylor','Casey','Morgan','Jamie','Riley',"
        "'Avery','Quinn','Drew','Reese','Rowan','Sage'])[1 + get_byte(%1$s, 0) %% 16] || ' ' || "
        "(ARRAY['Smith','Lee','Garcia','Novak','Kowalski','Silva','Muller','Rossi','Dubois',"
        "'Jensen','Tanaka','Okafor','Ivanova','Haddad','Nguyen','Kaya'])[1 + get_byte(%1$s, 1) %% "
        "16]",
        h);
  } else {  // keep_format
    e = absl::StrFormat(
        "(SELECT string_agg(CASE WHEN ch ~ '[0-9]' THEN chr(48 + get_byte(s.h, (i %% 32)::int) %% "
        "10) WHEN ch ~ '[a-z]' THEN chr(97 + get_byte(s.h, (i %% 32)::int) %% 26) "
        "WHEN ch ~ '[A-Z]' THEN chr(65 + get_byte(s.h, (i %% 32)::int) %% 26) ELSE ch END, '' "
        "ORDER BY i) FROM (SELECT %s AS h) s, regexp_split_to_table(%s::text, '') "
        "WITH ORDINALITY AS x(ch, i))",
        h, col);
  }
  if (c.max_length > 0) e = absl::StrFormat("left(%s, %d)", e, c.max_length);
  return absl::StrFormat("CASE WHEN %s IS NULL THEN NULL ELSE (%s)::%s END", col, e, c.type);
}

}  // namespace

absl::StatusOr<MaskRules> ParseMaskRules(std::string_view toml_text) {
  toml::table doc;
  try {
    doc = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "mask rules, line %d: %s", e.source().begin.line, std::string(e.description())));
  }
  MaskRules out;
  out.salt = doc["salt"].value_or(std::string());
  const toml::array* rules = doc["rule"].as_array();
  if (rules == nullptr || rules->empty()) {
    return absl::InvalidArgumentError("mask rules hold no [[rule]]");
  }
  std::set<std::pair<std::string, std::string>> seen;
  int n = 0;
  for (const toml::node& node : *rules) {
    ++n;
    const toml::table* t = node.as_table();
    if (t == nullptr) return absl::InvalidArgumentError(absl::StrFormat("rule %d: not a table", n));
    MaskRule r{.table = (*t)["table"].value_or(std::string()),
               .column = (*t)["column"].value_or(std::string()),
               .function = (*t)["function"].value_or(std::string())};
    if (auto v = (*t)["value"].value<std::string>()) r.value = *v;
    if (r.table.empty() || r.column.empty() || r.function.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("rule %d: needs table, column and function", n));
    }
    if (!KnownFunction(r.function)) {
      std::vector<std::string> known(std::begin(kMaskFunctions), std::end(kMaskFunctions));
      return absl::InvalidArgumentError(
          absl::StrFormat("rule %d (%s.%s): unknown mask function \"%s\"; known: %s", n, r.table,
                          r.column, r.function, absl::StrJoin(known, ", ")));
    }
    if ((r.function == "value") != r.value.has_value()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "rule %d (%s.%s): `value = ...` goes with function \"value\" and only with it", n,
          r.table, r.column));
    }
    if (!seen.insert({r.table, r.column}).second) {
      return absl::InvalidArgumentError(
          absl::StrFormat("rule %d: a second rule for %s.%s", n, r.table, r.column));
    }
    out.rules.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<MaskPlan> PlanMasking(PGconn* conn, const MaskRules& rules) {
  std::vector<std::string> problems;
  std::map<std::string, std::vector<std::string>> sets;  // table -> col = expr
  for (const MaskRule& rule : rules.rules) {
    CAMBIUM_ASSIGN_OR_RETURN(std::optional<Column> c, DescribeColumn(conn, rule));
    const std::string what = rule.table + "." + rule.column;
    if (!c) {
      problems.push_back(absl::StrFormat("%s: no such column", what));
      continue;
    }
    if (rule.function == "null" && c->not_null) {
      problems.push_back(absl::StrFormat("%s is NOT NULL: it cannot be masked to null", what));
      continue;
    }
    if (rule.function != "null" && rule.function != "value" && !IsText(*c)) {
      problems.push_back(absl::StrFormat("%s is %s: %s needs a text column (use value or null)",
                                         what, c->type, rule.function));
      continue;
    }
    const std::string col = QuoteIdent(conn, rule.column);
    sets[c->table].push_back(
        absl::StrFormat("%s = %s", col, Expression(conn, rule, *c, col, rules.salt)));
  }
  if (!problems.empty()) {
    return absl::FailedPreconditionError("mask rules do not fit the schema: " +
                                         absl::StrJoin(problems, "; "));
  }
  MaskPlan plan;
  for (const auto& [table, assignments] : sets) {
    plan.updates.push_back(
        absl::StrFormat("UPDATE %s SET %s", table, absl::StrJoin(assignments, ", ")));
    plan.tables.push_back(table);
    plan.columns += static_cast<int>(assignments.size());
  }
  return plan;
}

}  // namespace cambium::workflows
