// `cambium console` in a real headless Chromium (issue 13 item 2): a stack started
// with the CLI, rows committed at distinct times, the console on a free port, and
// the page driven through WebDriver as a person would use it: the branch tree
// loads, main's history chart appears, a click on a bar shows the `cambium query
// --at` and `branch restore --at` commands for that bar's last commit, the query
// command, run for real, answers as of that time, and the preview shows the same
// rows. Skipped if Debian's chromium or chromium-driver is not installed.
#include <signal.h>

#include <fstream>
#include <regex>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "tests/cli/cli_fixture.h"
#include "tests/console/webdriver.h"

namespace cambium::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

// Splits a command line as a POSIX shell would for the quoting the console uses:
// plain words, '...' and "..." with \ escapes.
std::vector<std::string> ShellWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      word += line.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '"') {
      for (++i; i < line.size() && line[i] != '"'; ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) ++i;
        word += line[i];
      }
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

absl::Time ParseRfc3339(const std::string& text) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &t, &err)) << text << ": " << err;
  return t;
}

class ConsoleBrowserTest : public CliStackTest {};

TEST_F(ConsoleBrowserTest, PickingAPointShowsCommandsThatAnswerAsOfThen) {
  const std::optional<std::string> chromium = FindChromium();
  const std::optional<std::string> chromedriver = FindChromedriver();
  if (!chromium || !chromedriver) {
    GTEST_SKIP() << "needs Debian's chromium and chromium-driver (tools/setup-deps.sh)";
  }
  const absl::Time test_start = absl::Now();
  Result up = Cambium({"up"});
  ASSERT_EQ(up.code, 0) << up.err;
  const std::string conn = up.out["connection_string"].get<std::string>();

  // Three commits, two seconds apart: the chart's buckets (1 s wide for a window
  // this short) hold them apart.
  Psql(conn, "CREATE TABLE console_orders (id int PRIMARY KEY, item text)");
  Psql(conn, "INSERT INTO console_orders VALUES (1, 'apple')");
  absl::SleepFor(absl::Seconds(2));
  const absl::Time before_second = absl::Now();
  Psql(conn, "INSERT INTO console_orders VALUES (2, 'pear')");
  absl::SleepFor(absl::Seconds(2));
  const absl::Time before_third = absl::Now();
  Psql(conn, "INSERT INTO console_orders VALUES (3, 'fig')");

  // The console on a free port; it prints its URL.
  const std::string console_out = dir_->Sub("console.out");
  auto console = Subprocess::Start(
      {.argv = {CAMBIUM_CLI_BIN, "console", "--data-dir", dir_->path(), "--listen", "127.0.0.1:0"},
       .stdout_file = console_out,
       .stderr_file = console_out,
       .die_with_parent = true});
  ASSERT_TRUE(console.ok()) << console.status();
  std::string url;
  const std::regex url_re(R"((http://127\.0\.0\.1:\d+/))");
  for (int i = 0; i < 300 && url.empty() && (*console)->running(); ++i) {
    std::ifstream in(console_out);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::smatch m;
    if (std::regex_search(text, m, url_re)) url = m[1];
    if (url.empty()) absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_FALSE(url.empty()) << "the console printed no URL";

  const std::string profile = dir_->Sub("chromium-profile");
  std::filesystem::create_directories(profile);
  auto browser = WebDriver::Start(*chromedriver, *chromium, profile, dir_->Sub("chromedriver.log"));
  ASSERT_TRUE(browser.ok()) << browser.status();
  WebDriver& web = **browser;
  // If this process is killed, the browser and the console go too.
  auto guard =
      ExitGuard::Start(absl::StrFormat("kill -KILL -- -%d -%d", web.pgid(), (*console)->pid()));
  ASSERT_TRUE(guard.ok()) << guard.status();
  const absl::Time page_start = absl::Now();
  absl::Status loaded = web.Navigate(url);
  ASSERT_TRUE(loaded.ok()) << loaded;

  // The branch tree, then main's chart.
  auto main_button = web.WaitFor(R"(#branch-tree button.branch[data-branch="main"])");
  ASSERT_TRUE(main_button.ok()) << main_button.status();
  const absl::Duration tree_after = absl::Now() - page_start;
  ASSERT_TRUE(web.Click(*main_button).ok());
  auto bars = web.WaitUntil(
      "const bars = [...document.querySelectorAll('#chart rect.bar')];"
      "return bars.length ? bars.map(b => [b.dataset.index, b.dataset.lastCommit,"
      "                                    b.classList.contains('old')]) : null;",
      absl::Seconds(30));
  ASSERT_TRUE(bars.ok()) << bars.status();
  const absl::Duration chart_after = absl::Now() - page_start;

  // The bar that holds the second insert (and nothing of the third).
  std::string index, picked_time;
  for (const json& bar : *bars) {
    const absl::Time last = ParseRfc3339(bar[1].get<std::string>());
    if (last >= before_second && last < before_third && !bar[2].get<bool>()) {
      index = bar[0].get<std::string>();
      picked_time = bar[1].get<std::string>();
    }
  }
  ASSERT_FALSE(index.empty()) << "no bar between the second and third insert: " << bars->dump();
  auto bar = web.Find(absl::StrFormat(R"(#chart rect.bar[data-index="%s"])", index));
  ASSERT_TRUE(bar.ok()) << bar.status();
  ASSERT_TRUE(web.Click(*bar).ok());

  // The commands, once the table picker has the tables of that time.
  ASSERT_TRUE(
      web.WaitUntil("return !document.getElementById('table-picker').disabled;", absl::Seconds(60))
          .ok());
  auto query_el = web.Find("#command-query");
  auto restore_el = web.Find("#command-restore");
  ASSERT_TRUE(query_el.ok() && restore_el.ok());
  const std::string query_cmd = web.Text(*query_el).value_or("");
  const std::string restore_cmd = web.Text(*restore_el).value_or("");
  const std::regex restore_re(R"(^cambium branch restore main --at (\S+) --data-dir (\S+)$)");
  std::smatch rm;
  ASSERT_TRUE(std::regex_match(restore_cmd, rm, restore_re)) << restore_cmd;
  EXPECT_EQ(rm[1].str(), picked_time);
  const absl::Time at = ParseRfc3339(rm[1]);
  EXPECT_GE(at, before_second);
  EXPECT_LT(at, before_third);
  EXPECT_GE(at, test_start);
  EXPECT_LE(at, absl::Now());
  const std::regex query_re(R"re(^cambium query main --at (\S+) --data-dir (\S+) -- "(.+)"$)re");
  std::smatch qm;
  ASSERT_TRUE(std::regex_match(query_cmd, qm, query_re)) << query_cmd;
  EXPECT_EQ(qm[1].str(), picked_time);
  EXPECT_THAT(qm[3].str(), HasSubstr("console_orders"));

  // The query command, run for real, answers as of that time: two rows, not three.
  std::vector<std::string> argv = ShellWords(query_cmd);
  ASSERT_EQ(argv[0], "cambium");
  argv[0] = CAMBIUM_CLI_BIN;
  argv.insert(std::find(argv.begin(), argv.end(), "--"), "--json");
  auto ran = RunCommand({.argv = argv}, absl::Minutes(3));
  ASSERT_TRUE(ran.ok()) << ran.status();
  ASSERT_EQ(ran->exit_code, 0) << ran->err;
  const json answer = json::parse(ran->out);
  ASSERT_EQ(answer["rows"].size(), 2u) << answer.dump();
  EXPECT_EQ(answer["rows"][1]["item"], "pear");

  // The preview shows the same rows in the page.
  auto preview = web.Find("#preview-button");
  ASSERT_TRUE(preview.ok());
  ASSERT_TRUE(web.Click(*preview).ok());
  auto cells = web.WaitUntil(
      "const rows = document.querySelectorAll('#preview tbody tr');"
      "return rows.length ? [...rows].map(r => r.textContent) : null;",
      absl::Seconds(60));
  ASSERT_TRUE(cells.ok()) << cells.status();
  ASSERT_EQ(cells->size(), 2u) << cells->dump();
  EXPECT_THAT((*cells)[0].get<std::string>(), HasSubstr("apple"));
  EXPECT_THAT((*cells)[1].get<std::string>(), HasSubstr("pear"));

  // The endpoints panel lists main as running; no password anywhere in the page.
  auto endpoint = web.WaitFor(R"(#endpoints tr[data-endpoint="main"])");
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_THAT(web.Text(*endpoint).value_or(""), HasSubstr("running"));
  const std::string password = PasswordOf(conn);
  ASSERT_FALSE(password.empty());
  EXPECT_THAT(web.Source().value_or(password), Not(HasSubstr(password)));

  if (const char* shot = std::getenv("CAMBIUM_CONSOLE_SCREENSHOT")) {
    if (auto png = web.Screenshot(); png.ok()) std::ofstream(shot) << *png;
  }
  std::cerr << absl::StrFormat("console timings: tree %s, chart %s, whole test %s\n",
                               absl::FormatDuration(tree_after), absl::FormatDuration(chart_after),
                               absl::FormatDuration(absl::Now() - test_start));

  // SIGTERM ends the console cleanly.
  (*browser).reset();
  (*console)->Signal(SIGTERM);
  auto code = (*console)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
}

}  // namespace
}  // namespace cambium::testing
