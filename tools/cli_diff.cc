// Cli: `cambium diff schema A B`: the object-level difference between the schemas
// of two points (BRANCH, BRANCH@TIME, BRANCH@LSN), read from each point's catalogs
// through libpq (tools/workflows/schema_catalog.h) and compared object by object
// (schema_diff.h). Exit 0 when equal, 1 when different, like diff(1).
#include "absl/strings/str_format.h"
#include "common/pg_roles.h"
#include "common/status.h"
#include "tools/cli.h"
#include "tools/pg_client.h"
#include "tools/workflows/schema_catalog.h"
#include "tools/workflows/schema_diff.h"

namespace cambium::cli {

absl::StatusOr<std::vector<workflows::SchemaObject>> Cli::ReadSchemaAt(const ViewSpec& spec,
                                                                       std::string* lsn) {
  std::vector<workflows::SchemaObject> schema;
  CAMBIUM_RETURN_IF_ERROR(WithView(spec, [&](const ViewSession& view) -> absl::Status {
    CAMBIUM_ASSIGN_OR_RETURN(PgConn conn, Connect(view.socket_dir, view.port, kSuperuserRole, ""));
    CAMBIUM_ASSIGN_OR_RETURN(schema, workflows::ReadSchema(conn.get()));
    if (lsn) *lsn = view.lsn;
    return absl::OkStatus();
  }));
  return schema;
}

absl::StatusOr<Output> Cli::DiffSchema(const std::string& a, const std::string& b) {
  CAMBIUM_ASSIGN_OR_RETURN(ViewSpec spec_a, ParseViewSpec(a));
  CAMBIUM_ASSIGN_OR_RETURN(ViewSpec spec_b, ParseViewSpec(b));
  std::string lsn_a, lsn_b;
  CAMBIUM_ASSIGN_OR_RETURN(auto schema_a, ReadSchemaAt(spec_a, &lsn_a));
  CAMBIUM_ASSIGN_OR_RETURN(auto schema_b, ReadSchemaAt(spec_b, &lsn_b));
  const std::vector<workflows::SchemaChange> changes = workflows::DiffSchemas(schema_a, schema_b);
  auto side = [](const ViewSpec& s, const std::string& lsn) {
    return nlohmann::json{{"point", s.Label()},
                          {"branch", s.branch},
                          {"lsn", lsn.empty() ? nlohmann::json(nullptr) : nlohmann::json(lsn)}};
  };
  Output out;
  out.json = {{"a", side(spec_a, lsn_a)},
              {"b", side(spec_b, lsn_b)},
              {"equal", changes.empty()},
              {"changes", workflows::ToJson(changes)}};
  out.text = changes.empty() ? absl::StrFormat("The schemas of %s and %s are equal.\n",
                                               spec_a.Label(), spec_b.Label())
                             : workflows::FormatDiff(changes, spec_a.Label(), spec_b.Label());
  out.exit_code = changes.empty() ? 0 : 1;
  return out;
}

}  // namespace cambium::cli
