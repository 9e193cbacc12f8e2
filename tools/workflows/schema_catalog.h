// ReadSchema: the user-visible schema of one database, read from pg_catalog through
// libpq, as a flat list of named objects with JSON definitions. `cambium diff schema`
// reads two branches with it and compares them (schema_diff.h).
//
// What is read, and why from the catalogs: every object kind a migration can create,
// change or drop (schemas, tables with their columns, constraints, indexes, views,
// materialized views, sequences, functions/procedures/aggregates, triggers, types,
// extensions, row-level security policies and explicit privileges). Definitions use
// the server's own deparsers (format_type, pg_get_expr, pg_get_indexdef,
// pg_get_viewdef, pg_get_functiondef, ...) so two databases compare equal exactly when
// Postgres would print them the same; nothing scrapes pg_dump output. The catalogs
// are read in one REPEATABLE READ, READ ONLY transaction with search_path set to
// pg_catalog alone, so the result is one consistent snapshot and every name the
// deparsers print is schema-qualified (no dependence on the caller's search_path).
// Objects in pg_catalog, information_schema, pg_toast* and pg_temp* are left out, as
// are objects that belong to an extension (the extension itself is listed) and the
// sequences behind identity columns (the column's "identity" says it).
//
// Names are quote_ident-quoted and schema-qualified: "public.t", "public.t.t_pkey"
// for constraints, triggers and policies (schema.table.name), "public.f(integer)"
// for functions, "public.t TO alice" for grants.
//
// Thread-safety: uses `conn` exclusively for the duration of the call.
#ifndef CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_CATALOG_H_
#define CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_CATALOG_H_

#include <libpq-fe.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace cambium::workflows {

struct SchemaObject {
  // "schema", "table", "constraint", "index", "view", "materialized_view",
  // "sequence", "function", "trigger", "type", "extension", "policy", "grant".
  std::string kind;
  std::string name;
  // A JSON object of the object's properties; tables hold their columns in
  // definition["columns"] (an array in column order).
  nlohmann::json definition;
};

// Reads the schema of the database `conn` is connected to, sorted by (kind, name).
// REQUIRES: `conn` is idle (not inside a transaction block); FAILED_PRECONDITION
// otherwise. A query error is INTERNAL with the server's message.
absl::StatusOr<std::vector<SchemaObject>> ReadSchema(PGconn* conn);

}  // namespace cambium::workflows

#endif  // CAMBIUM_TOOLS_WORKFLOWS_SCHEMA_CATALOG_H_
