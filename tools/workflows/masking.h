// Masking rules for preview branches (`cambium branch create X --mask rules.toml`,
// issue 12; docs/workflows.md): which columns are rewritten, and how, before anyone
// gets credentials to the branch.
//
// Rules file (TOML):
//   salt = "per-environment secret"     # feeds hash and the fake generators
//   [[rule]]
//   table = "public.users"              # schema-qualified (public if not)
//   column = "email"
//   function = "fake_email"             # see kMaskFunctions
//   value = "x"                         # function = "value" only
//
// Functions (each keeps NULL as NULL; the generators are deterministic per value and
// salt, so equal values stay equal across tables and joins still line up):
//   null         NULL (the column must be nullable)
//   value        a fixed value, cast to the column's type
//   hash         hex SHA-256 of salt || value (text columns; cut to the length limit)
//   fake_email   user_<12 hex>@example.com
//   fake_name    a first and a last name picked by the hash
//   keep_format  each digit, lower and upper case letter replaced by one of its class
//                from the hash; everything else kept (phone numbers, IDs, postcodes)
// The generators need a text column (text, varchar, char, citext); `value` and `null`
// work on any type.
//
// Thread-safety: pure functions over one connection.
#ifndef CAMBIUM_TOOLS_WORKFLOWS_MASKING_H_
#define CAMBIUM_TOOLS_WORKFLOWS_MASKING_H_

#include <libpq-fe.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace cambium::workflows {

inline constexpr const char* kMaskFunctions[] = {"null",       "value",     "hash",
                                                 "fake_email", "fake_name", "keep_format"};

struct MaskRule {
  std::string table;  // as written ("users" means public.users)
  std::string column;
  std::string function;
  std::optional<std::string> value;  // function "value"
};

struct MaskRules {
  std::string salt;
  std::vector<MaskRule> rules;
};

// Parses and checks a rules file's text: unknown functions, a missing value, a rule
// twice for one column are INVALID_ARGUMENT naming the rule.
absl::StatusOr<MaskRules> ParseMaskRules(std::string_view toml_text);

// What masking does on one database.
struct MaskPlan {
  std::vector<std::string> updates;  // one UPDATE per table, all its rules
  std::vector<std::string> tables;   // quoted schema.table, to rewrite and analyze
  int columns = 0;
};

// Checks the rules against the catalog of `conn`'s database (tables and columns
// exist, types and nullability allow the function): FAILED_PRECONDITION naming every
// rule that does not fit. Reads only the catalog.
absl::StatusOr<MaskPlan> PlanMasking(PGconn* conn, const MaskRules& rules);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_MASKING_H_
