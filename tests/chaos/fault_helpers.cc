// Round: helpers the faults share: waiting for the stack to restart a daemon,
// restarting main's endpoint, expecting writes to stall or resume, idle branches.
#include <signal.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/lsn.h"
#include "tests/chaos/chaos_round.h"

namespace cambium::chaos {
namespace {

const DaemonInfo* FindDaemon(const StackStatus& st, const std::string& name) {
  if (st.pageserver.name == name) return &st.pageserver;
  for (const DaemonInfo& d : st.safekeepers) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<pid_t> Round::DaemonPid(const std::string& name) {
  auto st = stack_.Status();
  if (!st.ok()) return st.status();
  const DaemonInfo* d = FindDaemon(*st, name);
  if (d == nullptr || !d->running || d->pid <= 0) {
    return absl::UnavailableError(name + " is not running");
  }
  return d->pid;
}

std::string Round::StackErrorLines(const std::string& endpoint) {
  const std::string d = stack_.data_dir();
  // A daemon that dies without logging (a signal, an abort) says why on stderr.
  auto out_tail = [](const std::string& path) {
    std::vector<std::string> lines = absl::StrSplit(FileTail(path, 3000), '\n', absl::SkipEmpty());
    lines.erase(
        std::remove_if(lines.begin(), lines.end(),
                       [](const std::string& l) { return absl::StrContains(l, "listening on"); }),
        lines.end());
    if (lines.size() > 3) lines.erase(lines.begin(), lines.end() - 3);
    std::string out;
    for (const std::string& l : lines) {
      out += "    [" + path.substr(path.rfind('/') + 1) + "] " + l.substr(0, 400) + "\n";
    }
    return out;
  };
  std::string out =
      ErrorLines(d + "/logs/pageserver.log") + out_tail(d + "/logs/pageserver.log.out");
  for (int i = 0; i < 3; ++i) {
    out += ErrorLines(absl::StrFormat("%s/logs/sk%d.log", d, i), 4);
    out += out_tail(absl::StrFormat("%s/logs/sk%d.log.out", d, i));
  }
  out += ErrorLines(d + "/endpoints/" + endpoint + "/shim.log");
  out += ErrorLines(d + "/endpoints/" + endpoint + "/postgres.log");
  return out;
}

bool Round::AwaitRestart(const std::string& name, pid_t old_pid, bool may_refuse) {
  return AwaitRestarts({{name, old_pid}}, may_refuse);
}

bool Round::AwaitRestarts(const std::vector<std::pair<std::string, pid_t>>& dead, bool may_refuse) {
  std::vector<std::string> down;
  const absl::Time deadline = absl::Now() + config_.supervisor_wait;
  for (;;) {
    down.clear();
    auto st = stack_.Status();
    for (const auto& [name, old_pid] : dead) {
      const DaemonInfo* d = st.ok() ? FindDaemon(*st, name) : nullptr;
      if (d == nullptr || !d->running || d->pid == old_pid || !ProcessLive(d->pid)) {
        down.push_back(name);
      }
    }
    if (down.empty() || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  if (down.empty()) {
    Log("restarted by the stack itself: " +
        absl::StrJoin(dead, ", ", [](std::string* out, const auto& d) { out->append(d.first); }));
    return true;
  }
  const std::string names = absl::StrJoin(down, ", ");
  if (!may_refuse) {
    AddDefect("supervisor-restart",
              "the local stack restarts crashed daemons by itself (issue 9: a supervisor "
              "started by `cambium up`)",
              absl::StrFormat("%s still down %s after kill -9; running `cambium up`", names,
                              absl::FormatDuration(config_.supervisor_wait)));
  }
  absl::Status up = stack_.Up();
  if (!up.ok()) Log("cambium up after " + names + " crashed: " + up.ToString());
  for (const auto& [name, old_pid] : dead) {
    if (!DaemonPid(name).ok()) return false;
  }
  return true;
}

void Round::RestartMainAtOnce() {
  CliResult stop = stack_.Cambium({"endpoint", "stop", "main"});
  if (!stop.ok()) {
    AddDefect("endpoint-restart-at-once",
              "`cambium endpoint stop main` of a crashed endpoint succeeds", stop.Describe(),
              StackErrorLines());
  }
  CliResult start = stack_.Cambium({"endpoint", "start", "main"});
  if (!start.ok()) {
    AddDefect("endpoint-restart-at-once",
              "`cambium endpoint stop main && cambium endpoint start main` works at once after "
              "kill -9 (issue 9 acceptance)",
              start.Describe(), StackErrorLines());
    const absl::Time deadline = absl::Now() + absl::Seconds(90);
    while (!start.ok() && absl::Now() < deadline) {
      absl::SleepFor(absl::Seconds(2));
      (void)stack_.Cambium({"endpoint", "stop", "main"});
      start = stack_.Cambium({"endpoint", "start", "main"});
    }
    Log(start.ok() ? "main started after retries" : "main still not started: " + start.Describe());
  }
  if (start.ok()) main_.Set(start.out.value("maintenance_connection_string", main_.Get()));
}

bool Round::ExpectWritesResume(int n) {
  const size_t want = load_.recorder().acked_count() + n;
  if (load_.recorder().WaitForAcked(want, config_.resume_timeout)) return true;
  AddDefect("writes-resume",
            absl::StrFormat("%d more commits acknowledged on main within %s after the fault", n,
                            absl::FormatDuration(config_.resume_timeout)),
            absl::StrFormat("no progress (%s)", load_.Summary()), StackErrorLines());
  if (absl::Status s = EnsureHealthy(); !s.ok()) Log("repair failed: " + s.ToString());
  return false;
}

std::string Round::ArchiveCatchesUp(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  // Main may be restarting (the supervisor starts a postgres that exited again).
  absl::StatusOr<std::string> lsn = absl::UnavailableError("not asked");
  for (;;) {
    auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
    lsn = client.ok() ? (*client)->QueryValue("SELECT pg_current_wal_flush_lsn()")
                      : absl::StatusOr<std::string>(client.status());
    if (lsn.ok() || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  if (!lsn.ok()) return "main's flushed LSN is unknown: " + lsn.status().ToString();
  const Lsn want = Lsn::Parse(*lsn).value_or(Lsn(0));
  std::string head;
  while (absl::Now() < deadline) {
    CliResult r = stack_.Cambium({"lsn", "main"}, absl::Seconds(30));
    head = r.ok() ? r.out.value("lsn", "") : r.Describe();
    if (r.ok() && Lsn::Parse(head).value_or(Lsn(0)) >= want) return "";
    absl::SleepFor(absl::Milliseconds(500));
  }
  return absl::StrFormat("after %s `cambium lsn main` is %s, main flushed %s",
                         absl::FormatDuration(timeout), head, *lsn);
}

void Round::ExpectNoAcksBetween(absl::Time from, absl::Time to, const std::string& why) {
  const absl::Time start = from + config_.stall_grace;
  if (to <= start) {
    Log(absl::StrFormat("stall window too short to check (%s)", absl::FormatDuration(to - from)));
    return;
  }
  int n = 0;
  absl::Time first;
  for (const AckRecorder::Ack& a : load_.recorder().Acked()) {
    if (a.at > start && a.at < to && n++ == 0) first = a.at;
  }
  if (n == 0) {
    Log(absl::StrFormat("no commit acknowledged during %s without quorum (%s)",
                        absl::FormatDuration(to - from), why));
    return;
  }
  AddDefect(
      "writes-stall-without-quorum",
      "no commit is acknowledged while fewer than 2 of 3 safekeepers can take WAL (" + why + ")",
      absl::StrFormat("%d commits acknowledged, the first %s after quorum was lost", n,
                      absl::FormatDuration(first - from)));
}

absl::StatusOr<std::string> Round::StartIdleBranch() {
  const std::string name = NextBranchName("idle");
  CliResult r = stack_.Cambium({"branch", "create", name}, absl::Minutes(1));
  if (!r.ok()) return absl::UnavailableError("branch create " + name + ": " + r.Describe());
  auto conn = stack_.StartEndpoint(name);
  if (!conn.ok()) {
    (void)stack_.Cambium({"branch", "delete", name, "--purge"});
    return conn.status();
  }
  return name;
}

void Round::DropIdleBranch(const std::string& name) {
  (void)stack_.Cambium({"endpoint", "stop", name});
  CliResult r = stack_.Cambium({"branch", "delete", name, "--purge"});
  if (!r.ok()) Log("could not delete idle branch " + name + ": " + r.Describe());
}

void Round::ExpectDeleteRefused(const std::string& name, const std::string& why) {
  CliResult r = stack_.Cambium({"branch", "delete", name});
  if (!r.ok()) {
    Log("delete of " + name + " refused as it should: " + r.Describe());
    return;
  }
  AddDefect("idle-writer-live",
            "`branch delete " + name +
                "` is refused while its endpoint runs: a writer is live while its stream is "
                "open, however idle (" +
                why + ")",
            "the branch was deleted under its running endpoint", StackErrorLines(name));
}

}  // namespace cambium::chaos
