// DiffSchemas: what changed between two schemas read by ReadSchema
// (schema_catalog.h), for `cambium diff schema A B` and as the schema check of
// `cambium migrate prepare/complete`. Objects are matched by (kind, name). Tables are
// compared twice over: their columns one by one (kind "column", name
// "schema.table.column"), and their remaining table-level properties, so a table is
// "changed" only when something other than its columns changed.
//
// The output forms: ToJson for scripts, FormatDiff for people (unified-diff-like),
// and DestructiveWarnings for the changes that lose data or can fail on existing
// rows (dropped tables and columns, narrowed types, NOT NULL added, ...).
//
// Thread-safety: pure functions.
#ifndef CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_DIFF_H_
#define CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_DIFF_H_

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tools/workflows/schema_catalog.h"

namespace cambium::workflows {

struct SchemaChange {
  enum class Type { kAdded, kRemoved, kChanged };

  std::string kind;  // a SchemaObject kind, or "column"
  std::string name;
  Type change = Type::kChanged;
  nlohmann::json from;  // null when added
  nlohmann::json to;    // null when removed
};

// The changes that turn schema `a` into schema `b`, sorted by (kind, name).
// Both inputs are ReadSchema results (any order).
std::vector<SchemaChange> DiffSchemas(const std::vector<SchemaObject>& a,
                                      const std::vector<SchemaObject>& b);

// [{"kind", "name", "change": "added"|"removed"|"changed", "from", "to"}, ...]
nlohmann::json ToJson(const std::vector<SchemaChange>& changes);

// "--- label_a\n+++ label_b\n" and then, per change, "@@ kind name @@" followed by
// the definition one property per line: " " unchanged, "-" only in a, "+" only in b.
std::string FormatDiff(const std::vector<SchemaChange>& changes, const std::string& label_a,
                       const std::string& label_b);

// One sentence per change that can lose data or fail on existing rows.
std::vector<std::string> DestructiveWarnings(const std::vector<SchemaChange>& changes);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_DIFF_H_
