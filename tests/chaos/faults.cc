// Round: the faults. Each one injects itself, checks its own expectations, and
// leaves the stack running again (or records why it could not).
#include <signal.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/lsn.h"
#include "tests/chaos/chaos_round.h"

namespace cambium::chaos {
void Round::Inject(const FaultSpec& f) {
  switch (f.kind) {
    case FaultKind::kKillPageserver:
      KillDaemon("pageserver");
      break;
    case FaultKind::kKillSafekeeper0:
    case FaultKind::kKillSafekeeper1:
    case FaultKind::kKillSafekeeper2:
      KillDaemon(absl::StrFormat(
          "sk%d", static_cast<int>(f.kind) - static_cast<int>(FaultKind::kKillSafekeeper0)));
      break;
    case FaultKind::kKillTwoSafekeepers:
      KillTwoSafekeepers(f);
      break;
    case FaultKind::kKillShim:
      KillEndpointProcess(/*shim=*/true, f.a ? PostgresKill::kInstance : PostgresKill::kNone);
      break;
    case FaultKind::kKillPostgres:
      KillEndpointProcess(/*shim=*/false,
                          f.a ? PostgresKill::kPostmasterOnly : PostgresKill::kInstance);
      break;
    case FaultKind::kSigstop:
      Sigstop(f);
      break;
    case FaultKind::kPageserverRestartIdle:
      PageserverRestartIdle(f);
      break;
    case FaultKind::kDiskFull:
      DiskFull(f);
      break;
    case FaultKind::kFlipRocksDb:
      FlipRocksDb(f);
      break;
    case FaultKind::kFlipSafekeeper:
      FlipSafekeeper(f);
      break;
    default:
      break;
  }
}

void Round::KillDaemon(const std::string& name) {
  auto pid = DaemonPid(name);
  if (!pid.ok()) {
    Log("cannot kill " + name + ": " + pid.status().ToString());
    return;
  }
  const size_t acked = load_.recorder().acked_count();
  SignalProcess(*pid, SIGKILL);
  if (name != "pageserver" && !load_.recorder().WaitForAcked(acked + 3, absl::Seconds(30))) {
    AddDefect(
        "writes-continue", "commits continue while one of three safekeepers is down (quorum is 2)",
        "fewer than 3 commits acknowledged in 30 s after kill -9 of " + name, StackErrorLines());
  }
  AwaitRestart(name, *pid);
  ExpectWritesResume();
}

void Round::KillTwoSafekeepers(const FaultSpec& f) {
  const std::string a = absl::StrFormat("sk%d", f.a), b = absl::StrFormat("sk%d", f.b);
  auto pa = DaemonPid(a), pb = DaemonPid(b);
  if (!pa.ok() || !pb.ok()) {
    Log("cannot kill two safekeepers: one is not running");
    return;
  }
  // The supervisor would bring them back within a second, leaving no window to
  // see writes stall: it is paused for the hold (a slow supervisor, as faults go).
  auto st = stack_.Status();
  const pid_t supervisor = st.ok() ? st->supervisor_pid : 0;
  if (supervisor > 0) kill(supervisor, SIGSTOP);
  SignalProcess(*pa, SIGKILL);
  SignalProcess(*pb, SIGKILL);
  const absl::Time killed = absl::Now();
  // Quorum is lost until one of them is back (the supervisor may bring one back
  // before the hold ends): writes must stall meanwhile.
  absl::Time back = absl::InfinitePast();
  const absl::Time hold_end = killed + f.hold;
  while (back == absl::InfinitePast() && absl::Now() < hold_end) {
    st = stack_.Status();
    if (st.ok()) {
      for (const DaemonInfo& d : st->safekeepers) {
        if ((d.name == a || d.name == b) && d.running && d.pid != *pa && d.pid != *pb) {
          back = absl::Now();
        }
      }
    }
    if (back == absl::InfinitePast()) absl::SleepFor(absl::Milliseconds(200));
  }
  ExpectNoAcksBetween(killed, back == absl::InfinitePast() ? absl::Now() : back,
                      "kill -9 of " + a + " and " + b);
  if (supervisor > 0) kill(supervisor, SIGCONT);
  AwaitRestarts({{a, *pa}, {b, *pb}});
  ExpectWritesResume();
}

void Round::KillEndpointProcess(bool shim, PostgresKill postgres) {
  auto st = stack_.Status();
  const EndpointInfo* ep = st.ok() ? st->endpoint("main") : nullptr;
  if (ep == nullptr || !ep->running) {
    Log("main is not running; nothing to kill");
    return;
  }
  // Postgres backends leave the postmaster's process group (they call setsid), so
  // the instance is the postmaster and its children.
  std::vector<pid_t> instance = ChildProcesses(ep->postgres_pid);
  instance.push_back(ep->postgres_pid);
  if (shim) SignalProcess(ep->shim_pid, SIGKILL);
  if (postgres == PostgresKill::kInstance) {
    for (pid_t p : instance) kill(p, SIGKILL);
  } else if (postgres == PostgresKill::kPostmasterOnly) {
    kill(ep->postgres_pid, SIGKILL);
  }
  absl::SleepFor(absl::Milliseconds(500));
  RestartMainAtOnce();
  // Whatever of the old instance outlived the crash (backends of a killed
  // postmaster, stuck on its shared memory or its dead mount) must be gone once
  // `endpoint stop` has dealt with the crashed endpoint; else its clients hang.
  std::vector<std::string> left;
  for (pid_t p : instance) {
    if (ProcessLive(p)) left.push_back(absl::StrFormat("%d (%s)", p, ProcessTitle(p)));
  }
  if (!left.empty()) {
    AddDefect("endpoint-stop-leaves-no-process",
              "after `cambium endpoint stop` of a crashed endpoint no process of its old "
              "postgres instance runs (its clients would hang on them)",
              absl::StrFormat("%d still running: %s", left.size(), absl::StrJoin(left, ", ")));
    for (pid_t p : instance) kill(p, SIGKILL);  // the round goes on without them
  }
  ExpectWritesResume();
}

void Round::Sigstop(const FaultSpec& f) {
  const auto target = static_cast<StopTarget>(f.a);
  std::string idle;
  if (target == StopTarget::kIdleShim || target == StopTarget::kPageserver) {
    auto b = StartIdleBranch();
    if (!b.ok()) Log("no idle branch: " + b.status().ToString());
    if (b.ok()) idle = *b;
  }
  std::vector<pid_t> pids;
  const std::string sk1 = absl::StrFormat("sk%d", f.b),
                    sk2 = absl::StrFormat("sk%d", (f.b + 1) % 3);
  auto st = stack_.Status();
  if (!st.ok()) return;
  const EndpointInfo* main_ep = st->endpoint("main");
  const EndpointInfo* idle_ep = idle.empty() ? nullptr : st->endpoint(idle);
  if (target == StopTarget::kMainShim && main_ep) pids.push_back(main_ep->shim_pid);
  if (target == StopTarget::kIdleShim && idle_ep) pids.push_back(idle_ep->shim_pid);
  if (target == StopTarget::kPageserver) pids.push_back(st->pageserver.pid);
  for (const DaemonInfo& d : st->safekeepers) {
    if ((target == StopTarget::kSafekeeper || target == StopTarget::kTwoSafekeepers) &&
        d.name == sk1)
      pids.push_back(d.pid);
    if (target == StopTarget::kTwoSafekeepers && d.name == sk2) pids.push_back(d.pid);
  }
  if (pids.empty()) {
    Log("sigstop: no target process");
    if (!idle.empty()) DropIdleBranch(idle);
    return;
  }
  const size_t acked = load_.recorder().acked_count();
  for (pid_t p : pids) kill(p, SIGSTOP);  // the process only: its children run on
  const absl::Time stopped = absl::Now();
  absl::SleepFor(f.hold);
  const absl::Time resumed = absl::Now();
  for (pid_t p : pids) kill(p, SIGCONT);
  if (target == StopTarget::kTwoSafekeepers) {
    ExpectNoAcksBetween(stopped, resumed, "SIGSTOP of " + sk1 + " and " + sk2);
  }
  if (target == StopTarget::kSafekeeper && load_.recorder().acked_count() < acked + 3) {
    AddDefect("writes-continue", "commits continue while one safekeeper is stopped (SIGSTOP)",
              absl::StrFormat("%d commits in %s", load_.recorder().acked_count() - acked,
                              absl::FormatDuration(f.hold)),
              StackErrorLines());
  }
  for (pid_t p : pids) {
    if (!ProcessLive(p)) {
      AddDefect("sigstop-survives", "a process stopped longer than the lease and resumed runs on",
                absl::StrFormat("pid %d exited after SIGCONT", p), StackErrorLines());
    }
  }
  if (!idle.empty()) {
    ExpectDeleteRefused(
        idle, absl::StrFormat("after SIGSTOP of the %s for %s",
                              target == StopTarget::kIdleShim ? "idle shim" : "pageserver",
                              absl::FormatDuration(f.hold)));
    DropIdleBranch(idle);
  }
  ExpectWritesResume();
}

void Round::PageserverRestartIdle(const FaultSpec& f) {
  load_.Pause();
  auto idle = StartIdleBranch();
  auto pid = DaemonPid("pageserver");
  if (!idle.ok() || !pid.ok()) {
    Log("pageserver-restart-idle skipped: " +
        (idle.ok() ? pid.status().ToString() : idle.status().ToString()));
    if (idle.ok()) DropIdleBranch(*idle);
    load_.Resume();
    return;
  }
  SignalProcess(*pid, f.a ? SIGTERM : SIGKILL);
  if (f.a) {
    // A clean restart: the operator stops the pageserver and `cambium up` starts it.
    for (int i = 0; i < 300 && ProcessLive(*pid); ++i) absl::SleepFor(absl::Milliseconds(100));
    (void)stack_.Up();
  } else {
    AwaitRestart("pageserver", *pid);
  }
  Log("endpoints idle for longer than the lease");
  absl::SleepFor(config_.lease + absl::Seconds(3));
  ExpectDeleteRefused(*idle, "idle endpoint across a pageserver restart");
  // The idle endpoints still write, and main's WAL is archived again.
  auto conn = stack_.ConnectionString(*idle);
  auto client = conn.ok() ? PgClient::Connect(*conn, absl::Seconds(10))
                          : absl::StatusOr<std::unique_ptr<PgClient>>(conn.status());
  absl::Status w =
      client.ok() ? (*client)->Exec("INSERT INTO markers VALUES (-1)") : client.status();
  if (!w.ok()) {
    AddDefect("idle-endpoint-usable",
              "an endpoint idle across a pageserver restart commits afterwards", w.ToString(),
              StackErrorLines(*idle));
  }
  load_.Resume();
  ExpectWritesResume();
  if (std::string why = ArchiveCatchesUp(absl::Seconds(30)); !why.empty()) {
    AddDefect("archive-follows-after-restart",
              "after a pageserver restart with idle endpoints, main's WAL is archived again "
              "(`cambium lsn main` reaches main's flushed LSN within 30 s)",
              why, StackErrorLines());
  }
  DropIdleBranch(*idle);
}

void Round::DiskFull(const FaultSpec& f) {
  auto before = stack_.Status();
  if (!before.ok()) return;
  absl::Status filled = stack_.FillDisk();
  Log(absl::StrFormat("disk full (%s); holding %s", filled.ToString(),
                      absl::FormatDuration(f.hold)));
  if (f.a) {
    // A crash while the disk is full: crash recovery cannot write, and postgres
    // gives up (exits) until there is space; the stack must start it again by itself.
    absl::SleepFor(f.hold / 2);
    const EndpointInfo* ep = before->endpoint("main");
    if (ep != nullptr && ProcessLive(ep->postgres_pid)) {
      std::vector<pid_t> instance = ChildProcesses(ep->postgres_pid);
      instance.push_back(ep->postgres_pid);
      for (pid_t p : instance) kill(p, SIGKILL);
      Log(absl::StrFormat("killed main's postgres (%d processes) while the disk is full",
                          instance.size()));
    }
    absl::SleepFor(f.hold - f.hold / 2);
  } else {
    absl::SleepFor(f.hold);
  }
  stack_.FreeBallast();
  auto free_bytes = stack_.FreeBytes();
  Log(absl::StrFormat("ballast removed, %d MiB free", free_bytes.ok() ? *free_bytes >> 20 : 0));
  // Nothing crashes: the same daemons and shim run on.
  std::vector<std::pair<std::string, pid_t>> procs = {{"pageserver", before->pageserver.pid}};
  for (const DaemonInfo& d : before->safekeepers) procs.push_back({d.name, d.pid});
  if (const EndpointInfo* ep = before->endpoint("main"))
    procs.push_back({"main shim", ep->shim_pid});
  for (const auto& [name, pid] : procs) {
    if (!ProcessLive(pid)) {
      AddDefect("disk-full-no-crash",
                "on ENOSPC every component refuses work with a clear error and keeps running",
                name + " (pid " + std::to_string(pid) + ") died during the full disk",
                StackErrorLines());
    }
  }
  // The pageserver takes WAL again (`cambium lsn main` catches up with main).
  if (std::string why = ArchiveCatchesUp(config_.resume_timeout); !why.empty()) {
    AddDefect("disk-full-resume",
              "the pageserver archives WAL again by itself once the disk has space again", why,
              StackErrorLines());
  }
  // And writes resume once space is back, without anyone restarting anything.
  const size_t want = load_.recorder().acked_count() + 3;
  if (!load_.recorder().WaitForAcked(want, config_.resume_timeout)) {
    AddDefect("disk-full-resume", "writes resume by themselves once the disk has space again",
              absl::StrFormat("no commit in %s after freeing the disk (%s)",
                              absl::FormatDuration(config_.resume_timeout), load_.Summary()),
              StackErrorLines());
    if (absl::Status s = EnsureHealthy(); !s.ok()) Log("repair failed: " + s.ToString());
  }
}

}  // namespace cambium::chaos
