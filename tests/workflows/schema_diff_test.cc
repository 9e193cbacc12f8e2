// DiffSchemas, ToJson, FormatDiff and DestructiveWarnings on hand-built schemas; the
// same functions against real catalogs are in workflows_postgres_test.cc.
#include "tools/workflows/schema_diff.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cambium::workflows {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

nlohmann::json Column(const std::string& name, const std::string& type, bool not_null = false) {
  return {{"name", name}, {"type", type}, {"not_null", not_null}, {"default", nullptr}};
}

SchemaObject Table(const std::string& name, std::vector<nlohmann::json> columns) {
  return {"table", name, {{"persistence", "permanent"}, {"columns", columns}}};
}

std::vector<std::string> Warnings(const std::string& from_type, const std::string& to_type) {
  return DestructiveWarnings(DiffSchemas({Table("public.t", {Column("c", from_type)})},
                                         {Table("public.t", {Column("c", to_type)})}));
}

TEST(DiffSchemas, EqualSchemasHaveNoChanges) {
  std::vector<SchemaObject> s = {Table("public.t", {Column("a", "integer")}),
                                 {"view", "public.v", {{"definition", "SELECT 1"}}}};
  EXPECT_THAT(DiffSchemas(s, s), IsEmpty());
}

TEST(DiffSchemas, ReportsColumnsSeparatelyFromTheirTable) {
  auto changes = DiffSchemas({Table("public.t", {Column("a", "integer"), Column("b", "text")})},
                             {Table("public.t", {Column("a", "bigint"), Column("c", "text")})});
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].name, "public.t.a");
  EXPECT_EQ(changes[0].change, SchemaChange::Type::kChanged);
  EXPECT_EQ(changes[0].from["type"], "integer");
  EXPECT_EQ(changes[0].to["type"], "bigint");
  EXPECT_EQ(changes[1].name, "public.t.b");
  EXPECT_EQ(changes[1].change, SchemaChange::Type::kRemoved);
  EXPECT_TRUE(changes[1].to.is_null());
  EXPECT_EQ(changes[2].name, "public.t.c");
  EXPECT_EQ(changes[2].change, SchemaChange::Type::kAdded);
  EXPECT_TRUE(changes[2].from.is_null());
}

TEST(DiffSchemas, TableChangesOnlyForTableLevelProperties) {
  SchemaObject a = Table("public.t", {Column("a", "integer")});
  SchemaObject b = a;
  b.definition["row_security"] = true;
  auto changes = DiffSchemas({a}, {b});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, "table");
  EXPECT_FALSE(changes[0].from.contains("columns"));
  EXPECT_EQ(changes[0].to["row_security"], true);
}

TEST(ToJson, ListsKindNameChangeFromTo) {
  auto json = ToJson(DiffSchemas({}, {{"sequence", "public.s", {{"start", 1}}}}));
  ASSERT_EQ(json.size(), 1u);
  EXPECT_EQ(json[0]["kind"], "sequence");
  EXPECT_EQ(json[0]["name"], "public.s");
  EXPECT_EQ(json[0]["change"], "added");
  EXPECT_TRUE(json[0]["from"].is_null());
  EXPECT_EQ(json[0]["to"]["start"], 1);
}

TEST(FormatDiff, PrintsHeaderHunksAndPropertyLines) {
  std::string text = FormatDiff(
      DiffSchemas({{"view", "public.v", {{"definition", " SELECT 1;\n"}, {"owner", "me"}}}},
                  {{"view", "public.v", {{"definition", " SELECT 2;\n"}, {"owner", "me"}}}}),
      "main", "dev");
  EXPECT_EQ(text,
            "--- main\n+++ dev\n@@ view public.v @@\n definition:\n-   SELECT 1;\n+   SELECT 2;\n"
            " owner: me\n");
}

TEST(DestructiveWarnings, NarrowedTypes) {
  EXPECT_THAT(Warnings("bigint", "integer"), ElementsAre(HasSubstr("public.t.c narrows")));
  EXPECT_THAT(Warnings("character varying(100)", "character varying(10)"),
              ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("text", "character varying(20)"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("numeric(12,2)", "numeric(10,2)"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("numeric(12,4)", "numeric(12,2)"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("numeric", "numeric(10,2)"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("double precision", "real"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("numeric(10,2)", "integer"), ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("timestamp(6) with time zone", "timestamp(0) with time zone"),
              ElementsAre(HasSubstr("narrows")));
  EXPECT_THAT(Warnings("character varying(5)[]", "character varying(2)[]"),
              ElementsAre(HasSubstr("narrows")));
}

TEST(DestructiveWarnings, WidenedTypesAreSafe) {
  EXPECT_THAT(Warnings("integer", "bigint"), IsEmpty());
  EXPECT_THAT(Warnings("character varying(10)", "character varying(100)"), IsEmpty());
  EXPECT_THAT(Warnings("character varying(10)", "text"), IsEmpty());
  EXPECT_THAT(Warnings("numeric(10,2)", "numeric(12,2)"), IsEmpty());
  EXPECT_THAT(Warnings("integer", "numeric(12,0)"), IsEmpty());
  EXPECT_THAT(Warnings("real", "double precision"), IsEmpty());
}

TEST(DestructiveWarnings, DroppedObjectsAndNotNull) {
  auto changes = DiffSchemas({Table("public.t", {Column("a", "integer"), Column("b", "text")}),
                              Table("public.gone", {}),
                              {"materialized_view", "public.mv", {}},
                              {"sequence", "public.s", {}},
                              {"function", "public.f(integer)", {}},
                              {"type", "public.mood", {}},
                              {"view", "public.v", {}}},
                             {Table("public.t", {Column("a", "integer", /*not_null=*/true)})});
  EXPECT_THAT(DestructiveWarnings(changes),
              ElementsAre(HasSubstr("Column public.t.a becomes NOT NULL"),
                          HasSubstr("Column public.t.b is dropped"),
                          HasSubstr("Function public.f(integer) is dropped"),
                          HasSubstr("Materialized view public.mv is dropped"),
                          HasSubstr("Sequence public.s is dropped"),
                          HasSubstr("Table public.gone is dropped"),
                          HasSubstr("Type public.mood is dropped")));
}

}  // namespace
}  // namespace cambium::workflows
