// The supervisor (`cambium supervise`) with stand-in daemons: a "pageserver" that
// exits at once with code 3 and "safekeepers" that sleep. Checks restarts with the
// doubling backoff (read from the state file, no timing assertions), adoption of a
// running daemon (its exit noticed without waitpid), and that stopping the
// supervisor leaves the daemons running.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "tests/harness/temp_dir.h"
#include "tools/cli_state.h"
#include "tools/cli_util.h"
#include "tools/supervisor.h"

namespace cambium::cli {
namespace {

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<testing::TempDir>(testing::TempDir::Create("cambium-sup-").value());
  }
  void TearDown() override {
    if (supervisor_) (void)supervisor_->Stop(SIGTERM, absl::Seconds(10));
    // The stand-in daemons outlive the supervisor by design.
    (void)KillProcessesWithArgs({"/bin/sleep", SleepArg()});
  }

  // A unique argument, so that the test finds (and kills) only its own sleepers.
  std::string SleepArg() const { return "600." + std::to_string(getpid()); }

  // The stand-in pageserver exits at once with code 3, or runs `pageserver` instead.
  void WriteStack(int sk0_pid, std::vector<std::string> pageserver = {"/bin/sh", "-c", "exit 3"},
                  int pageserver_port = 1) {
    StackState stack;
    stack.pageserver = {.name = "pageserver",
                        .port = pageserver_port,
                        .log = dir_->Sub("logs/pageserver.log"),
                        .argv = std::move(pageserver)};
    for (int i = 0; i < 2; ++i) {
      const std::string name = "sk" + std::to_string(i);
      stack.safekeepers.push_back({.name = name,
                                   .port = 2 + i,
                                   .pid = i == 0 ? sk0_pid : 0,
                                   .log = dir_->Sub("logs/" + name + ".log"),
                                   .argv = {"/bin/sleep", SleepArg()}});
    }
    absl::StatusOr<DataDir> data = DataDir::Open(dir_->path());
    ASSERT_TRUE(data.ok()) << data.status();
    ASSERT_TRUE(data->SaveStack(stack).ok());
  }

  void StartSupervisor() {
    auto started =
        Subprocess::Start({.argv = {CAMBIUM_CLI_BIN, "supervise", "--data-dir", dir_->path()},
                           .die_with_parent = true});
    ASSERT_TRUE(started.ok()) << started.status();
    supervisor_ = *std::move(started);
  }

  // Polls the state file until `done` holds (bounded); returns the last state.
  SupervisorState WaitFor(const std::function<bool(const SupervisorState&)>& done) {
    SupervisorState last;
    for (int i = 0; i < 600; ++i) {
      absl::StatusOr<SupervisorState> s = LoadSupervisorState(dir_->path());
      if (s.ok()) {
        last = *s;
        if (done(last)) break;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return last;
  }

  static const DaemonRecord& Record(const SupervisorState& s, const std::string& name) {
    static const DaemonRecord kNone;
    for (const DaemonRecord& r : s.daemons) {
      if (r.name == name) return r;
    }
    return kNone;
  }

  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<Subprocess> supervisor_;
};

TEST_F(SupervisorTest, RestartsACrashingDaemonWithADoublingBackoff) {
  // Each start of the crashing daemon notes the restart count it was given (which
  // its /metrics reports as cambium_supervisor_restarts).
  const std::string starts = dir_->Sub("starts");
  WriteStack(0, {"/bin/sh", "-c",
                 absl::StrFormat("echo \"$CAMBIUM_SUPERVISOR_RESTARTS\" >> %s; exit 3", starts)});
  StartSupervisor();
  // Waiting for its next restart, after its third exit: restarted twice so far.
  SupervisorState s = WaitFor([](const SupervisorState& s) {
    const DaemonRecord& ps = Record(s, "pageserver");
    return ps.restarts >= 2 && ps.pid == 0;
  });
  const DaemonRecord& ps = Record(s, "pageserver");
  ASSERT_GE(ps.restarts, 2);
  ASSERT_EQ(ps.pid, 0);
  EXPECT_EQ(ps.last_exit, "exit code 3");
  EXPECT_NE(ps.last_restart, absl::InfinitePast());
  // 0.2 s after the first exit, then 0.4 s, 0.8 s, ...
  EXPECT_EQ(ps.next_start - ps.last_exit_time, absl::Milliseconds(200) * (1 << ps.restarts));
  absl::StatusOr<std::string> noted = ReadFileToString(starts);
  ASSERT_TRUE(noted.ok()) << noted.status();
  EXPECT_EQ(noted->substr(0, 6), "0\n1\n2\n") << *noted;
  // The sleepers were started once and never exited.
  for (const char* sk : {"sk0", "sk1"}) {
    EXPECT_EQ(Record(s, sk).restarts, 0) << sk;
    EXPECT_TRUE(ProcessAlive(Record(s, sk).pid)) << sk;
  }
  EXPECT_TRUE(SupervisorAlive(s.pid));

  // Stopping the supervisor leaves the daemons running and records it stopped.
  const int sk1 = Record(s, "sk1").pid;
  absl::StatusOr<int> code = supervisor_->Stop(SIGTERM, absl::Seconds(10));
  supervisor_.reset();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_TRUE(ProcessAlive(sk1));
  absl::StatusOr<SupervisorState> stopped = LoadSupervisorState(dir_->path());
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->pid, 0);
  EXPECT_EQ(Record(*stopped, "sk1").pid, sk1);
}

TEST_F(SupervisorTest, AdoptsARunningDaemonAndRestartsItWhenItDies) {
  auto sleeper = Subprocess::Start({.argv = {"/bin/sleep", SleepArg()}});
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  const int adopted = (*sleeper)->pid();
  WriteStack(adopted);
  StartSupervisor();
  SupervisorState s = WaitFor([&](const SupervisorState& s) {
    return s.daemons.size() == 3 && Record(s, "sk0").pid == adopted;
  });
  ASSERT_EQ(Record(s, "sk0").pid, adopted);
  // Not its child: the supervisor notices the death by polling, without a status.
  ASSERT_TRUE((*sleeper)->Stop(SIGKILL).ok());
  s = WaitFor([&](const SupervisorState& s) {
    const DaemonRecord& sk0 = Record(s, "sk0");
    return sk0.restarts == 1 && sk0.pid > 0;
  });
  const DaemonRecord& sk0 = Record(s, "sk0");
  EXPECT_EQ(sk0.restarts, 1);
  EXPECT_NE(sk0.pid, adopted);
  EXPECT_TRUE(ProcessAlive(sk0.pid));
  EXPECT_NE(sk0.last_exit.find("unknown"), std::string::npos) << sk0.last_exit;
}

// Chaos seeds 116-118: a daemon that crash-looped (its backoff grew), then came up
// (its port accepted a connection), is restarted at once after its next crash, not
// after the grown backoff.
TEST_F(SupervisorTest, ADaemonThatCameUpIsRestartedAtOnceAfterItsNextCrash) {
  // The stand-in's "port": a socket this test listens on once the daemon runs.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  const std::string broken = dir_->Sub("broken");
  { std::ofstream(broken) << "x"; }
  // Exits while `broken` exists (as a safekeeper with a damaged segment would),
  // then sleeps like a healthy daemon.
  WriteStack(0,
             {"/bin/sh", "-c",
              absl::StrFormat("test -e %s && exit 1; exec /bin/sleep %s", broken, SleepArg())},
             port);
  StartSupervisor();
  SupervisorState s = WaitFor([](const SupervisorState& s) {
    return Record(s, "pageserver").restarts >= 3 && Record(s, "pageserver").pid == 0;
  });
  ASSERT_GE(Record(s, "pageserver").restarts, 3);
  std::filesystem::remove(broken);
  s = WaitFor([](const SupervisorState& s) { return ProcessAlive(Record(s, "pageserver").pid); });
  const int healthy = Record(s, "pageserver").pid;
  ASSERT_TRUE(ProcessAlive(healthy));
  ASSERT_EQ(listen(fd, 16), 0);      // it "came up"
  absl::SleepFor(absl::Seconds(1));  // the supervisor looks every 100 ms
  ASSERT_EQ(kill(healthy, SIGKILL), 0);
  s = WaitFor([&](const SupervisorState& s) {
    return Record(s, "pageserver").last_exit == "signal 9 (SIGKILL)";
  });
  close(fd);
  const DaemonRecord& ps = Record(s, "pageserver");
  ASSERT_EQ(ps.last_exit, "signal 9 (SIGKILL)");
  EXPECT_EQ(ps.next_start - ps.last_exit_time, absl::Milliseconds(200));
}

TEST(SupervisorState, DescribesExits) {
  EXPECT_EQ(DescribeWaitStatus(3 << 8), "exit code 3");
  EXPECT_EQ(DescribeWaitStatus(SIGKILL), "signal 9 (SIGKILL)");
}

}  // namespace
}  // namespace cambium::cli
