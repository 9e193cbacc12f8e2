// ParseMaskRules: what a rules file may say, and the errors for what it may not.
#include "tools/workflows/masking.h"
#include "gtest/gtest.h"

namespace cambium::workflows {
namespace {

TEST(ParseMaskRules, ReadsSaltAndRules) {
  auto r = ParseMaskRules(R"(salt = "s"
[[rule]]
table = "users"
column = "email"
function = "fake_email"
[[rule]]
table = "public.users"
column = "age"
function = "value"
value = "42"
)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->salt, "s");
  ASSERT_EQ(r->rules.size(), 2u);
  EXPECT_EQ(r->rules[0].function, "fake_email");
  EXPECT_FALSE(r->rules[0].value.has_value());
  EXPECT_EQ(r->rules[1].value, "42");
}

TEST(ParseMaskRules, RefusesWhatItCannotApply) {
  auto code = [](const char* text) { return ParseMaskRules(text).status().code(); };
  constexpr auto kBad = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code("salt = "), kBad);         // not TOML
  EXPECT_EQ(code("salt = \"x\"\n"), kBad);  // no rule
  EXPECT_EQ(code("[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"scramble\"\n"), kBad);
  EXPECT_EQ(code("[[rule]]\ntable = \"t\"\nfunction = \"null\"\n"), kBad);  // no column
  EXPECT_EQ(code("[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"value\"\n"), kBad);
  EXPECT_EQ(code("[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"null\"\nvalue = \"1\"\n"),
            kBad);
  EXPECT_EQ(code("[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"null\"\n"
                 "[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"hash\"\n"),
            kBad);  // twice
  auto unknown = ParseMaskRules("[[rule]]\ntable = \"t\"\ncolumn = \"c\"\nfunction = \"x\"\n");
  EXPECT_NE(unknown.status().message().find("unknown mask function"), std::string::npos);
}

}  // namespace
}  // namespace cambium::workflows
