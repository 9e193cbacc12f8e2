#include "common/subprocess.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace cambium {
namespace {

// Live (non-zombie) processes in a process group. Zombies are skipped: a killed
// grandchild is reparented to PID 1, which may reap it late.
int LiveProcessesInGroup(pid_t pgid) {
  int live = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    size_t close_paren = line.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(line.substr(close_paren + 2));
    char state;
    long ppid, pgrp;
    if (!(rest >> state >> ppid >> pgrp)) continue;
    if (pgrp == pgid && state != 'Z' && state != 'X') ++live;
  }
  return live;
}

TEST(Subprocess, CapturesOutputAndExitCode) {
  auto r = RunCommand({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(Subprocess, PassesEnvironmentAndWorkingDirectory) {
  auto r = RunCommand(
      {.argv = {"sh", "-c", "echo $CAMBIUM_X; pwd"}, .env = {{"CAMBIUM_X", "hello"}}, .cwd = "/"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->out, "hello\n/\n");
}

TEST(Subprocess, CheckCommandReportsFailureWithStderr) {
  auto r = CheckCommand({.argv = {"sh", "-c", "echo boom >&2; exit 1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("boom"), std::string::npos);
  EXPECT_NE(r.status().message().find("exited with code 1"), std::string::npos);
}

TEST(Subprocess, MissingProgramIsNotFound) {
  auto r = RunCommand({.argv = {"cambium-no-such-program"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  auto p = Subprocess::Start({.argv = {"/nonexistent/bin/x"}});
  EXPECT_FALSE(p.ok());
}

TEST(Subprocess, TimeoutKillsTheCommand) {
  absl::Time start = absl::Now();
  auto r = RunCommand({.argv = {"sleep", "30"}}, absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST(Subprocess, StopTerminatesTheWholeProcessGroup) {
  // The shell starts a grandchild; stopping the shell's group must stop it too.
  auto p = Subprocess::Start({.argv = {"sh", "-c", "sleep 60 & echo $! > /dev/null; wait"}});
  ASSERT_TRUE(p.ok()) << p.status();
  pid_t pgid = (*p)->pid();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE((*p)->running());
  EXPECT_EQ(LiveProcessesInGroup(pgid), 2);  // the shell and its sleep
  auto code = (*p)->Stop(SIGTERM, absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGTERM);
  // No live process is left in the group.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (LiveProcessesInGroup(pgid) > 0 && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(LiveProcessesInGroup(pgid), 0);
}

TEST(Subprocess, RunsAsAnotherUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  auto r = CheckCommand({.argv = {"id", "-un"}, .user = "postgres"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "postgres\n");
}

}  // namespace
}  // namespace cambium
