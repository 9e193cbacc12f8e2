#include "tools/workflows/schema_diff.h"

#include <algorithm>
#include <climits>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace cambium::workflows {
namespace {

using Key = std::pair<std::string, std::string>;  // (kind, name)

std::map<Key, const nlohmann::json*> IndexByKey(const std::vector<SchemaObject>& objects) {
  std::map<Key, const nlohmann::json*> index;
  for (const SchemaObject& o : objects) index[{o.kind, o.name}] = &o.definition;
  return index;
}

std::map<std::string, const nlohmann::json*> ColumnsByName(const nlohmann::json& table) {
  std::map<std::string, const nlohmann::json*> columns;
  auto it = table.find("columns");
  if (it == table.end() || !it->is_array()) return columns;
  for (const nlohmann::json& column : *it) columns[column.value("name", "")] = &column;
  return columns;
}

nlohmann::json WithoutColumns(const nlohmann::json& table) {
  nlohmann::json copy = table;
  if (copy.is_object()) copy.erase("columns");
  return copy;
}

void DiffColumns(const std::string& table, const nlohmann::json& a, const nlohmann::json& b,
                 std::vector<SchemaChange>& out) {
  auto ca = ColumnsByName(a);
  auto cb = ColumnsByName(b);
  for (const auto& [name, def] : ca) {
    std::string full = absl::StrCat(table, ".", name);
    auto it = cb.find(name);
    if (it == cb.end()) {
      out.push_back({"column", full, SchemaChange::Type::kRemoved, *def, nullptr});
    } else if (*def != *it->second) {
      out.push_back({"column", full, SchemaChange::Type::kChanged, *def, *it->second});
    }
  }
  for (const auto& [name, def] : cb) {
    if (!ca.contains(name)) {
      out.push_back(
          {"column", absl::StrCat(table, ".", name), SchemaChange::Type::kAdded, nullptr, *def});
    }
  }
}

void DiffBoth(const Key& key, const nlohmann::json& a, const nlohmann::json& b,
              std::vector<SchemaChange>& out) {
  if (key.first != "table") {
    if (a != b) out.push_back({key.first, key.second, SchemaChange::Type::kChanged, a, b});
    return;
  }
  DiffColumns(key.second, a, b, out);
  nlohmann::json ta = WithoutColumns(a);
  nlohmann::json tb = WithoutColumns(b);
  if (ta != tb) out.push_back({key.first, key.second, SchemaChange::Type::kChanged, ta, tb});
}

const char* ChangeName(SchemaChange::Type type) {
  switch (type) {
    case SchemaChange::Type::kAdded:
      return "added";
    case SchemaChange::Type::kRemoved:
      return "removed";
    case SchemaChange::Type::kChanged:
      return "changed";
  }
  return "changed";
}

// ---- FormatDiff -------------------------------------------------------------

void AppendProperty(const std::string& key, const nlohmann::json& value,
                    std::vector<std::string>& lines) {
  if (value.is_string() && value.get_ref<const std::string&>().find('\n') != std::string::npos) {
    lines.push_back(key + ":");
    absl::string_view text = absl::StripSuffix(value.get_ref<const std::string&>(), "\n");
    for (absl::string_view line : absl::StrSplit(text, '\n'))
      lines.push_back(absl::StrCat("  ", line));
  } else if (value.is_string()) {
    lines.push_back(absl::StrCat(key, ": ", value.get_ref<const std::string&>()));
  } else if (value.is_array() && !value.empty() && value.front().is_object()) {
    lines.push_back(key + ":");
    for (const nlohmann::json& element : value) lines.push_back("  " + element.dump());
  } else {
    lines.push_back(absl::StrCat(key, ": ", value.dump()));
  }
}

std::vector<std::string> DefinitionLines(const nlohmann::json& definition) {
  std::vector<std::string> lines;
  if (definition.is_object()) {
    for (const auto& [key, value] : definition.items()) AppendProperty(key, value, lines);
  } else if (!definition.is_null()) {
    lines.push_back(definition.dump());
  }
  return lines;
}

// A line diff by longest common subsequence (definitions are short).
void AppendLineDiff(const std::vector<std::string>& a, const std::vector<std::string>& b,
                    std::string& out) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      absl::StrAppend(&out, " ", a[i++], "\n");
      ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      absl::StrAppend(&out, "-", a[i++], "\n");  // removals first, as diff -u prints them
    } else {
      absl::StrAppend(&out, "+", b[j++], "\n");
    }
  }
}

// ---- DestructiveWarnings ----------------------------------------------------

// A format_type() result taken apart: "character varying(10)[]" ->
// {base "character varying", modifiers {10}, array true}.
struct ParsedType {
  std::string base;
  std::vector<int> modifiers;
  bool array = false;
};

ParsedType ParseType(absl::string_view type) {
  ParsedType parsed;
  while (absl::ConsumeSuffix(&type, "[]")) parsed.array = true;
  size_t open = type.find('(');
  size_t close = type.find(')', open == absl::string_view::npos ? 0 : open);
  if (open == absl::string_view::npos || close == absl::string_view::npos) {
    parsed.base = std::string(type);
    return parsed;
  }
  for (absl::string_view m : absl::StrSplit(type.substr(open + 1, close - open - 1), ',')) {
    int value = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(m), &value)) parsed.modifiers.push_back(value);
  }
  parsed.base = absl::StrCat(absl::StripTrailingAsciiWhitespace(type.substr(0, open)),
                             type.substr(close + 1));
  return parsed;
}

int IntegerRank(const std::string& base) {
  if (base == "smallint") return 1;
  if (base == "integer") return 2;
  if (base == "bigint") return 3;
  return 0;
}

int FloatRank(const std::string& base) {
  if (base == "real") return 1;
  if (base == "double precision") return 2;
  return 0;
}

// Maximum length of a string type; nullopt if not a string type.
std::optional<int> StringLimit(const ParsedType& t) {
  if (t.base == "text" || t.base == "bpchar") return INT_MAX;
  if (t.base == "character varying" || t.base == "character") {
    return t.modifiers.empty() ? INT_MAX : t.modifiers[0];
  }
  return std::nullopt;
}

bool IsTimeType(const std::string& base) {
  return base == "timestamp without time zone" || base == "timestamp with time zone" ||
         base == "time without time zone" || base == "time with time zone" || base == "interval";
}

// Digits before the decimal point that a type can hold; INT_MAX if unconstrained.
int IntegerDigits(const ParsedType& t) {
  static constexpr int kDigits[] = {0, 5, 10, 19};
  if (int rank = IntegerRank(t.base); rank > 0) return kDigits[rank];
  if (t.base == "numeric" && !t.modifiers.empty()) {
    return t.modifiers[0] - (t.modifiers.size() > 1 ? t.modifiers[1] : 0);
  }
  return INT_MAX;
}

bool IsNumericNarrowing(const ParsedType& from, const ParsedType& to) {
  const bool from_int = IntegerRank(from.base) > 0, to_int = IntegerRank(to.base) > 0;
  const bool from_float = FloatRank(from.base) > 0, to_float = FloatRank(to.base) > 0;
  const bool from_numeric = from.base == "numeric", to_numeric = to.base == "numeric";
  if (!(from_int || from_float || from_numeric) || !(to_int || to_float || to_numeric)) {
    return false;
  }
  if (to_int) return from_float || from_numeric || IntegerRank(to.base) < IntegerRank(from.base);
  if (to_float) return from_numeric || (from_float && FloatRank(to.base) < FloatRank(from.base));
  // To numeric: fewer integer digits or (from numeric) fewer fraction digits.
  if (to.modifiers.empty()) return false;
  if (from_float) return true;
  const int to_scale = to.modifiers.size() > 1 ? to.modifiers[1] : 0;
  const int from_scale =
      from_numeric
          ? (from.modifiers.empty() ? INT_MAX : (from.modifiers.size() > 1 ? from.modifiers[1] : 0))
          : 0;
  return IntegerDigits(to) < IntegerDigits(from) || to_scale < from_scale;
}

bool IsNarrowing(const std::string& from_type, const std::string& to_type) {
  ParsedType from = ParseType(from_type), to = ParseType(to_type);
  if (from.array != to.array || from_type == to_type) return false;
  if (IsNumericNarrowing(from, to)) return true;
  std::optional<int> from_limit = StringLimit(from), to_limit = StringLimit(to);
  if (from_limit && to_limit) return *to_limit < *from_limit;
  if (IsTimeType(from.base) && to.base == "date") return from.base.starts_with("timestamp");
  if (IsTimeType(from.base) && from.base == to.base) {
    const int from_precision = from.modifiers.empty() ? 6 : from.modifiers[0];
    const int to_precision = to.modifiers.empty() ? 6 : to.modifiers[0];
    return to_precision < from_precision;
  }
  return false;
}

void ColumnWarnings(const SchemaChange& c, std::vector<std::string>& out) {
  if (c.change == SchemaChange::Type::kRemoved) {
    out.push_back(absl::StrCat("Column ", c.name, " is dropped; its values are lost."));
    return;
  }
  if (c.change != SchemaChange::Type::kChanged) return;
  const std::string from_type = c.from.value("type", ""), to_type = c.to.value("type", "");
  if (IsNarrowing(from_type, to_type)) {
    out.push_back(absl::StrCat("Column ", c.name, " narrows from ", from_type, " to ", to_type,
                               "; existing values that do not fit fail the migration or are "
                               "truncated."));
  }
  if (!c.from.value("not_null", false) && c.to.value("not_null", false)) {
    out.push_back(absl::StrCat("Column ", c.name,
                               " becomes NOT NULL; the migration fails if existing rows hold "
                               "NULL."));
  }
}

}  // namespace

std::vector<SchemaChange> DiffSchemas(const std::vector<SchemaObject>& a,
                                      const std::vector<SchemaObject>& b) {
  auto ia = IndexByKey(a);
  auto ib = IndexByKey(b);
  std::vector<SchemaChange> changes;
  for (const auto& [key, def] : ia) {
    auto it = ib.find(key);
    if (it == ib.end()) {
      changes.push_back({key.first, key.second, SchemaChange::Type::kRemoved, *def, nullptr});
    } else {
      DiffBoth(key, *def, *it->second, changes);
    }
  }
  for (const auto& [key, def] : ib) {
    if (!ia.contains(key)) {
      changes.push_back({key.first, key.second, SchemaChange::Type::kAdded, nullptr, *def});
    }
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const SchemaChange& x, const SchemaChange& y) {
                     return std::tie(x.kind, x.name) < std::tie(y.kind, y.name);
                   });
  return changes;
}

nlohmann::json ToJson(const std::vector<SchemaChange>& changes) {
  nlohmann::json out = nlohmann::json::array();
  for (const SchemaChange& c : changes) {
    out.push_back({{"kind", c.kind},
                   {"name", c.name},
                   {"change", ChangeName(c.change)},
                   {"from", c.from},
                   {"to", c.to}});
  }
  return out;
}

std::string FormatDiff(const std::vector<SchemaChange>& changes, const std::string& label_a,
                       const std::string& label_b) {
  std::string out = absl::StrCat("--- ", label_a, "\n+++ ", label_b, "\n");
  for (const SchemaChange& c : changes) {
    absl::StrAppend(&out, "@@ ", c.kind, " ", c.name, " @@\n");
    AppendLineDiff(DefinitionLines(c.from), DefinitionLines(c.to), out);
  }
  return out;
}

std::vector<std::string> DestructiveWarnings(const std::vector<SchemaChange>& changes) {
  static const std::map<std::string, std::string> kDropped = {
      {"table", "Table %s is dropped; its rows are lost."},
      {"materialized_view", "Materialized view %s is dropped; its contents are lost."},
      {"sequence", "Sequence %s is dropped; its current value is lost."},
      {"function", "Function %s is dropped; callers fail."},
      {"type", "Type %s is dropped."},
  };
  std::vector<std::string> warnings;
  for (const SchemaChange& c : changes) {
    if (c.kind == "column") {
      ColumnWarnings(c, warnings);
      continue;
    }
    auto it = kDropped.find(c.kind);
    if (c.change == SchemaChange::Type::kRemoved && it != kDropped.end()) {
      warnings.push_back(absl::StrReplaceAll(it->second, {{"%s", c.name}}));
    }
  }
  return warnings;
}

}  // namespace cambium::workflows
