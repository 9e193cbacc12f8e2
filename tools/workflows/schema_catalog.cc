#include "tools/workflows/schema_catalog.h"

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tools/workflows/libpq.h"

namespace cambium::workflows {
namespace {

struct CatalogQuery {
  const char* kind;
  std::string sql;  // returns (name text, definition json text)
};

// Every catalog query of ReadSchema. Placeholders: {NS} keeps only user schemas
// (alias n = pg_namespace); {NOEXT:catalog:expr} drops members of extensions.
constexpr const char* kNamespaceFilter =
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp%'";

std::string NotExtensionMember(const char* catalog, const char* oid_expr) {
  return absl::StrCat("NOT EXISTS (SELECT 1 FROM pg_depend x WHERE x.classid = '", catalog,
                      "'::regclass AND x.objid = ", oid_expr, " AND x.deptype = 'e')");
}

std::string Expand(const std::string& sql) {
  return absl::StrReplaceAll(sql, {{"{NS}", kNamespaceFilter},
                                   {"{NOEXT_CLASS}", NotExtensionMember("pg_class", "c.oid")},
                                   {"{NOEXT_PROC}", NotExtensionMember("pg_proc", "p.oid")},
                                   {"{NOEXT_TYPE}", NotExtensionMember("pg_type", "t.oid")},
                                   {"{NOEXT_NS}", NotExtensionMember("pg_namespace", "n.oid")}});
}

#define QNAME_REL "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"
#define QNAME_PROC                                                     \
  "quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || " \
  "pg_get_function_identity_arguments(p.oid) || ')'"
#define PERSISTENCE \
  "CASE c.relpersistence WHEN 'u' THEN 'unlogged' WHEN 't' THEN 'temporary' ELSE 'permanent' END"

const std::vector<CatalogQuery>& CatalogQueries() {
  static const auto* queries = new std::vector<CatalogQuery>{
      {"schema",
       "SELECT quote_ident(n.nspname), json_build_object('owner', pg_get_userbyid(n.nspowner)) "
       "FROM pg_namespace n WHERE {NS} AND {NOEXT_NS}"},
      {"table",
       "SELECT " QNAME_REL ", json_build_object("
       " 'persistence', " PERSISTENCE ","
       " 'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,"
       " 'partition_of', (SELECT i.inhparent::regclass::text FROM pg_inherits i"
       "   WHERE i.inhrelid = c.oid AND c.relispartition),"
       " 'partition_bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,"
       " 'inherits', (SELECT json_agg(i.inhparent::regclass::text ORDER BY i.inhseqno)"
       "   FROM pg_inherits i WHERE i.inhrelid = c.oid AND NOT c.relispartition),"
       " 'options', to_json(c.reloptions),"
       " 'row_security', c.relrowsecurity, 'force_row_security', c.relforcerowsecurity,"
       " 'owner', pg_get_userbyid(c.relowner),"
       " 'columns', COALESCE((SELECT json_agg(json_build_object("
       "     'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),"
       "     'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,"
       "     'not_null', a.attnotnull,"
       "     'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,"
       "     'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END,"
       "     'collation', CASE WHEN a.attcollation <> ty.typcollation THEN"
       "       (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)"
       "        FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace"
       "        WHERE co.oid = a.attcollation) END)"
       "   ORDER BY a.attnum)"
       "   FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid"
       "   LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
       "   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json)) "
       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
       "WHERE c.relkind IN ('r', 'p') AND {NS} AND {NOEXT_CLASS}"},
      {"constraint", "SELECT " QNAME_REL " || '.' || quote_ident(con.conname), json_build_object("
                     " 'table', " QNAME_REL ","
                     " 'type', CASE con.contype WHEN 'c' THEN 'check' WHEN 'f' THEN 'foreign key'"
                     "   WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' WHEN 't' THEN 'trigger'"
                     "   WHEN 'x' THEN 'exclusion' END,"
                     " 'definition', pg_get_constraintdef(con.oid)) "
                     "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
                     "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS} AND {NOEXT_CLASS}"},
      {"index",
       "SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), json_build_object("
       " 'table', " QNAME_REL ", 'definition', pg_get_indexdef(i.indexrelid),"
       " 'valid', i.indisvalid) "
       "FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
       "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = ic.relnamespace "
       "WHERE {NS} AND {NOEXT_CLASS}"},
      {"view", "SELECT " QNAME_REL ", json_build_object('definition', pg_get_viewdef(c.oid),"
               " 'options', to_json(c.reloptions), 'owner', pg_get_userbyid(c.relowner)) "
               "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
               "WHERE c.relkind = 'v' AND {NS} AND {NOEXT_CLASS}"},
      {"materialized_view",
       "SELECT " QNAME_REL ", json_build_object('definition', pg_get_viewdef(c.oid),"
       " 'owner', pg_get_userbyid(c.relowner)) "
       "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
       "WHERE c.relkind = 'm' AND {NS} AND {NOEXT_CLASS}"},
      {"sequence",
       "SELECT " QNAME_REL ", json_build_object("
       " 'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,"
       " 'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache,"
       " 'cycle', s.seqcycle, 'persistence', " PERSISTENCE ","
       " 'owned_by', (SELECT quote_ident(rn.nspname) || '.' || quote_ident(rc.relname) || '.' ||"
       "   quote_ident(ra.attname) FROM pg_depend d JOIN pg_class rc ON rc.oid = d.refobjid"
       "   JOIN pg_namespace rn ON rn.oid = rc.relnamespace"
       "   JOIN pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid"
       "   WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid"
       "   AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' LIMIT 1),"
       " 'owner', pg_get_userbyid(c.relowner)) "
       "FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS} AND {NOEXT_CLASS} "
       "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
       " AND d.objid = c.oid AND d.deptype = 'i')"},
      {"function",
       "SELECT " QNAME_PROC ", json_build_object("
       " 'kind', CASE p.prokind WHEN 'f' THEN 'function' WHEN 'p' THEN 'procedure'"
       "   WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window' END,"
       " 'result', pg_get_function_result(p.oid),"
       " 'definition', CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,"
       " 'aggregate', (SELECT json_build_object('transition', ag.aggtransfn::text,"
       "   'state_type', format_type(ag.aggtranstype, NULL), 'final', ag.aggfinalfn::text,"
       "   'combine', ag.aggcombinefn::text, 'initial', ag.agginitval)"
       "   FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid),"
       " 'owner', pg_get_userbyid(p.proowner)) "
       "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
       "WHERE {NS} AND {NOEXT_PROC}"},
      {"trigger", "SELECT " QNAME_REL " || '.' || quote_ident(tg.tgname), json_build_object("
                  " 'table', " QNAME_REL ", 'definition', pg_get_triggerdef(tg.oid),"
                  " 'enabled', CASE tg.tgenabled WHEN 'D' THEN 'disabled' WHEN 'R' THEN 'replica'"
                  "   WHEN 'A' THEN 'always' ELSE 'origin' END) "
                  "FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
                  "JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE NOT tg.tgisinternal AND {NS} AND {NOEXT_CLASS}"},
      {"type",
       "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname), CASE t.typtype"
       " WHEN 'e' THEN json_build_object('type', 'enum', 'labels', (SELECT json_agg(e.enumlabel"
       "   ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))"
       " WHEN 'c' THEN json_build_object('type', 'composite', 'attributes', (SELECT json_agg("
       "   json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod))"
       "   ORDER BY a.attnum) FROM pg_attribute a"
       "   WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))"
       " WHEN 'd' THEN json_build_object('type', 'domain',"
       "   'base_type', format_type(t.typbasetype, t.typtypmod), 'not_null', t.typnotnull,"
       "   'default', t.typdefault, 'constraints', (SELECT json_agg(json_build_object("
       "     'name', co.conname, 'definition', pg_get_constraintdef(co.oid)) ORDER BY co.conname)"
       "     FROM pg_constraint co WHERE co.contypid = t.oid))"
       " ELSE json_build_object('type', 'range', 'subtype', (SELECT format_type(r.rngsubtype,"
       "   NULL) FROM pg_range r WHERE r.rngtypid = t.oid)) END "
       "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
       "WHERE t.typtype IN ('e', 'c', 'd', 'r') AND (t.typtype <> 'c' OR"
       " (SELECT rc.relkind FROM pg_class rc WHERE rc.oid = t.typrelid) = 'c')"
       " AND {NS} AND {NOEXT_TYPE}"},
      {"extension",
       "SELECT quote_ident(e.extname), json_build_object('version', e.extversion,"
       " 'schema', n.nspname) "
       "FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"},
      {"policy",
       "SELECT " QNAME_REL " || '.' || quote_ident(pol.polname), json_build_object("
       " 'table', " QNAME_REL ","
       " 'command', CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'"
       "   WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,"
       " 'permissive', pol.polpermissive,"
       " 'roles', (SELECT json_agg(r.name ORDER BY r.name) FROM (SELECT CASE WHEN u.oid = 0"
       "   THEN 'public' ELSE pg_get_userbyid(u.oid)::text END AS name"
       "   FROM unnest(pol.polroles) AS u(oid)) r),"
       " 'using', pg_get_expr(pol.polqual, pol.polrelid),"
       " 'with_check', pg_get_expr(pol.polwithcheck, pol.polrelid)) "
       "FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid "
       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {NS}"},
      // One object per (object, grantee) whose privileges differ from the built-in
      // defaults (acldefault): the owner's full set and PUBLIC's EXECUTE on functions
      // are implicit; a default revoked shows as an empty privilege list.
      {"grant",
       "WITH acls(objkind, objname, acl, def) AS ("
       " SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'"
       "   WHEN 'm' THEN 'materialized_view' ELSE 'table' END, " QNAME_REL ", c.relacl,"
       "   acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner)"
       " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
       " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relacl IS NOT NULL"
       "   AND {NS} AND {NOEXT_CLASS}"
       " UNION ALL SELECT 'schema', quote_ident(n.nspname), n.nspacl,"
       "   acldefault('n', n.nspowner) FROM pg_namespace n WHERE n.nspacl IS NOT NULL AND {NS}"
       " UNION ALL SELECT 'function', " QNAME_PROC ", p.proacl, acldefault('f', p.proowner)"
       " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
       " WHERE p.proacl IS NOT NULL AND {NS} AND {NOEXT_PROC}), "
       "explicit AS (SELECT a.objkind, a.objname, e.grantee, array_agg(e.priv ORDER BY e.priv)"
       "   AS privs FROM acls a, LATERAL (SELECT x.grantee, x.privilege_type || CASE WHEN"
       "   x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS priv"
       "   FROM aclexplode(a.acl) x) e GROUP BY 1, 2, 3), "
       "implicit AS (SELECT a.objkind, a.objname, e.grantee, array_agg(e.priv ORDER BY e.priv)"
       "   AS privs FROM acls a, LATERAL (SELECT x.grantee, x.privilege_type || CASE WHEN"
       "   x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS priv"
       "   FROM aclexplode(a.def) x) e GROUP BY 1, 2, 3) "
       "SELECT g.objname || ' TO ' || g.grantee_name, json_build_object('object_kind',"
       " g.objkind, 'object', g.objname, 'grantee', g.grantee_name,"
       " 'privileges', to_json(g.privs)) "
       "FROM (SELECT COALESCE(x.objkind, d.objkind) AS objkind,"
       "   COALESCE(x.objname, d.objname) AS objname,"
       "   CASE WHEN COALESCE(x.grantee, d.grantee) = 0 THEN 'PUBLIC'"
       "   ELSE quote_ident(pg_get_userbyid(COALESCE(x.grantee, d.grantee))) END AS grantee_name,"
       "   COALESCE(x.privs, '{}'::text[]) AS privs, d.privs AS default_privs"
       "   FROM explicit x FULL JOIN implicit d ON d.objkind = x.objkind"
       "   AND d.objname = x.objname AND d.grantee = x.grantee) g "
       "WHERE g.privs IS DISTINCT FROM g.default_privs"},
  };
  return *queries;
}

#undef QNAME_REL
#undef QNAME_PROC
#undef PERSISTENCE

absl::Status Exec(PGconn* conn, const char* sql) {
  PgResult res(PQexec(conn, sql));
  if (PQresultStatus(res.get()) != PGRES_COMMAND_OK) {
    return absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn)));
  }
  return absl::OkStatus();
}

absl::Status RunQuery(PGconn* conn, const CatalogQuery& query, std::vector<SchemaObject>& out) {
  std::string sql = Expand(query.sql);
  PgResult res(PQexec(conn, sql.c_str()));
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    return absl::InternalError(
        absl::StrCat("reading ", query.kind, " objects: ", PQerrorMessage(conn)));
  }
  for (int row = 0; row < PQntuples(res.get()); ++row) {
    nlohmann::json definition =
        nlohmann::json::parse(PQgetvalue(res.get(), row, 1), nullptr, /*allow_exceptions=*/false);
    if (definition.is_discarded()) {
      return absl::InternalError(absl::StrCat("unparsable ", query.kind, " definition"));
    }
    out.push_back(SchemaObject{query.kind, PQgetvalue(res.get(), row, 0), std::move(definition)});
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<SchemaObject>> ReadSchema(PGconn* conn) {
  if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
    return absl::FailedPreconditionError("ReadSchema needs an idle connection");
  }
  absl::Status status = Exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  if (status.ok()) status = Exec(conn, "SET LOCAL search_path = pg_catalog");
  std::vector<SchemaObject> objects;
  for (const CatalogQuery& query : CatalogQueries()) {
    if (!status.ok()) break;
    status = RunQuery(conn, query, objects);
  }
  if (!status.ok()) {
    PgResult(PQexec(conn, "ROLLBACK"));
    return status;
  }
  if (absl::Status s = Exec(conn, "COMMIT"); !s.ok()) return s;
  std::sort(objects.begin(), objects.end(), [](const SchemaObject& a, const SchemaObject& b) {
    return std::tie(a.kind, a.name) < std::tie(b.kind, b.name);
  });
  return objects;
}

}  // namespace cambium::workflows
