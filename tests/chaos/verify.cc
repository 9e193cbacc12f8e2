// Round: the checks after the load: main, every branch, trimming, GC.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/lsn.h"
#include "tests/chaos/chaos_round.h"

namespace cambium::chaos {
namespace {

// pg_switch_wal() until main's WAL is at least this many segments long, so that
// "every safekeeper trimmed" is not vacuous.
constexpr int kMinWalSegments = 8;
// How long trimming and timeline deletion may take once everything is archived.
constexpr absl::Duration kTrimWait = absl::Seconds(60);
constexpr absl::Duration kTimelineDeleteWait = absl::Seconds(20);
// GC must return at least this share of a dropped table's bytes.
constexpr double kGcReclaimShare = 0.8;
// A commit that writes WAL however often it runs (ON CONFLICT DO NOTHING would not).
constexpr char kTouchSql[] =
    "INSERT INTO markers VALUES (%d) ON CONFLICT (id) DO UPDATE SET id = EXCLUDED.id";

int64_t ToInt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return -1;
  return it->get<int64_t>();
}

// The GC probe: one table per way of removing it (drop, truncate, vacuum_full),
// as statements (VACUUM refuses to run inside a multi-statement string).
struct GcProbes {
  std::vector<std::string> create;   // the tables, then CHECKPOINT
  std::string size_sql;              // their total size
  std::vector<std::string> remove;   // each removed its way, then CHECKPOINT
  std::vector<std::string> cleanup;  // whatever is left
};

GcProbes MakeGcProbes(const std::string& prefix, const std::vector<std::string>& ways) {
  GcProbes p;
  p.size_sql = "SELECT 0";
  for (const std::string& w : ways) {
    const std::string t = prefix + w;
    p.create.push_back(
        absl::StrFormat("DROP TABLE IF EXISTS %s; CREATE TABLE %s AS SELECT g AS id, (SELECT "
                        "decode(string_agg(md5(random()::text || g || i), ''), 'hex') FROM "
                        "generate_series(1, 94) i) AS pad FROM generate_series(1, 1000) g",
                        t, t));
    p.size_sql += absl::StrFormat(" + pg_total_relation_size('%s')", t);
    if (w == "drop") p.remove.push_back("DROP TABLE " + t);
    if (w == "truncate") p.remove.push_back("TRUNCATE " + t);
    if (w == "vacuum_full") {
      p.remove.push_back("DELETE FROM " + t);
      p.remove.push_back("VACUUM FULL " + t);
    }
    p.cleanup.push_back("DROP TABLE IF EXISTS " + t);
  }
  p.create.push_back("CHECKPOINT");
  p.remove.push_back("CHECKPOINT");  // Postgres unlinks dropped files at the next checkpoint
  return p;
}

}  // namespace

absl::Status Round::ProbeMainWrites() {
  auto st = stack_.Status();
  if (!st.ok()) return st.status();
  const EndpointInfo* ep = st->endpoint("main");
  if (ep == nullptr || !ep->running) return absl::UnavailableError("main's endpoint is down");
  main_.Set(ep->connection_string);
  absl::Status last;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
    last = client.ok() ? (*client)->Exec(absl::StrFormat(kTouchSql, -4)) : client.status();
    if (last.ok()) return last;
    absl::SleepFor(absl::Seconds(1));
  } while (absl::Now() < deadline);
  return last;
}

absl::Status Round::EnsureHealthy() {
  // Escalating repairs, as an operator would: start what is down; then restart
  // the whole stack. Each is followed by a write on main.
  auto st = stack_.Status();
  bool daemons = st.ok() && st->pageserver.running;
  for (const DaemonInfo& d : st.ok() ? st->safekeepers : std::vector<DaemonInfo>{}) {
    daemons &= d.running;
  }
  const EndpointInfo* ep = st.ok() ? st->endpoint("main") : nullptr;
  if (!daemons || ep == nullptr || !ep->running) {
    Log("repair: cambium up");
    if (ep == nullptr || !ep->running) (void)stack_.Cambium({"endpoint", "stop", "main"});
    (void)stack_.Up();
  }
  absl::Status probe = ProbeMainWrites();
  if (probe.ok()) return probe;
  // A wedged endpoint makes `endpoint stop` (and `down`) wait minutes for a clean
  // shutdown that cannot happen: the operator kills it, as after a crash.
  Log("repair: main does not take writes (" + probe.ToString() +
      "): kill -9 of main's postgres and shim, cambium down, cambium up");
  st = stack_.Status();
  if (const EndpointInfo* e = st.ok() ? st->endpoint("main") : nullptr) {
    SignalProcess(e->postgres_pid, SIGKILL);
    SignalProcess(e->shim_pid, SIGKILL);
  }
  (void)stack_.Cambium({"down"}, absl::Minutes(5));
  if (absl::Status up = stack_.Up(); !up.ok()) Log("repair: " + up.ToString());
  return ProbeMainWrites();
}

bool Round::Verify() {
  Log("verify");
  if (absl::Status s = EnsureHealthy(); !s.ok()) {
    AddDefect("stack-recovery", "the stack is healthy again after the round's faults", s.ToString(),
              StackErrorLines());
    return false;
  }
  auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
  if (!client.ok()) return false;
  VerifyMain(**client);
  // One more branch on the healthy stack (at an LSN or at head by the seed's
  // parity): this one must be created.
  std::mt19937_64 rng(seed_ ^ 0xb4a9c4);
  set_current_fault("none (branch on the healthy stack)");
  CreatePlannedBranch(seed_ % 2 ? BranchPlan::Kind::kAtHead : BranchPlan::Kind::kAtLsn, rng);
  BranchPlan made;
  {
    std::lock_guard<std::mutex> lock(mu_);
    made = plans_.back();
  }
  if (!made.created) {
    AddDefect("branch-create-healthy", "branch create succeeds on a healthy stack", made.error,
              StackErrorLines());
  }
  std::vector<BranchPlan> plans;
  {
    std::lock_guard<std::mutex> lock(mu_);
    plans = plans_;
  }
  std::vector<std::pair<std::string, std::string>> deleted;  // branch, timeline
  for (const BranchPlan& p : plans) {
    if (p.created && VerifyBranch(p)) deleted.push_back({p.name, p.timeline});
  }
  set_current_fault("none (after the round's faults)");
  CheckTimelinesDeleted(deleted);
  CheckTrimmed();
  CheckGcReclaims();
  return true;
}

void Round::CheckEndpoint(PgClient& client, const std::string& conninfo, const std::string& what) {
  auto balances = CheckBalances(client);
  if (!balances.ok() || !balances->empty()) {
    AddDefect("balances", "pgbench balances consistent on " + what,
              balances.ok() ? *balances : balances.status().ToString());
  }
  AmcheckResult am = RunAmcheck(conninfo);
  if (!am.clean) {
    AddDefect("amcheck", "pg_amcheck --heapallindexed clean on " + what, am.output,
              StackErrorLines(what));
  }
}

void Round::VerifyMain(PgClient& client) {
  const std::vector<AckRecorder::Ack> acks = load_.recorder().Acked();
  std::vector<int64_t> ids;
  ids.reserve(acks.size());
  for (const auto& a : acks) ids.push_back(a.id);
  auto lost = CheckAcked(client, ids, load_.recorder().last_attempted());
  if (!lost.ok() || !lost->empty()) {
    AddDefect("acked-commits", "every acknowledged commit is on main, nothing else",
              lost.ok() ? *lost : lost.status().ToString(), StackErrorLines());
  }
  std::vector<int64_t> markers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    markers = markers_;
  }
  auto present = client.QueryValue(
      absl::StrFormat("SELECT count(*) FROM markers WHERE id = ANY('{%s}'::bigint[])",
                      absl::StrJoin(markers, ",")));
  if (!present.ok() || *present != std::to_string(markers.size())) {
    AddDefect("acked-commits", "every committed marker is on main",
              present.ok() ? *present + " of " + std::to_string(markers.size())
                           : present.status().ToString());
  }
  CheckEndpoint(client, main_.Get(), "main");
  Log(absl::StrFormat("main verified: %d acknowledged commits, %d in doubt", ids.size(),
                      load_.recorder().InDoubt().size()));
}

bool Round::VerifyBranch(const BranchPlan& p) {
  set_current_fault(p.fault);
  auto conn = stack_.StartEndpoint(p.name);
  if (!conn.ok()) {
    AddDefect("branch-endpoint-start",
              "an endpoint starts on branch " + p.name + " (created at " + p.branch_lsn + ")",
              conn.status().ToString(), StackErrorLines(p.name));
    (void)stack_.Cambium({"endpoint", "stop", p.name});
    return false;
  }
  auto client = PgClient::Connect(*conn, absl::Seconds(10));
  if (!client.ok()) {
    AddDefect("branch-endpoint-start", "branch " + p.name + " answers queries",
              client.status().ToString());
  } else if (p.kind == BranchPlan::Kind::kAtHead) {
    std::vector<int64_t> ids;
    for (const auto& a : load_.recorder().Acked()) {
      if (ids.size() >= p.acked_before) break;
      ids.push_back(a.id);
    }
    auto lost = CheckAcked(**client, ids, INT64_MAX);
    auto marker = (*client)->QueryValue(
        absl::StrFormat("SELECT count(*) FROM markers WHERE id = %d", p.marker));
    if (!lost.ok() || !lost->empty() || !marker.ok() || *marker != "1") {
      AddDefect("head-branch",
                "branch " + p.name + " created at head (" + p.branch_lsn +
                    ") holds every commit acknowledged before `branch create` started, and the "
                    "marker committed just before",
                absl::StrFormat(
                    "acks: %s; marker %d present: %s",
                    lost.ok() ? (lost->empty() ? "all there" : *lost) : lost.status().ToString(),
                    p.marker, marker.ok() ? *marker : marker.status().ToString()));
    }
  } else {
    auto sample = TakeSample(**client);
    const std::string diff = sample.ok() ? DiffSamples(p.expected, *sample) : "";
    if (!sample.ok() || !diff.empty()) {
      AddDefect("branch-exact",
                "branch " + p.name + " equals main's state at " + p.lsn +
                    " (sampled under LOCK "
                    "IN SHARE MODE)",
                sample.ok() ? diff : sample.status().ToString(), StackErrorLines(p.name));
    }
  }
  if (client.ok()) CheckEndpoint(**client, *conn, "branch " + p.name);
  CliResult stop = stack_.Cambium({"endpoint", "stop", p.name});
  CliResult del = stack_.Cambium({"branch", "delete", p.name, "--purge"});
  if (!del.ok()) {
    AddDefect("branch-delete", "a branch whose endpoint was stopped can be deleted",
              "endpoint stop: " + stop.Describe() + "; branch delete: " + del.Describe());
    return false;
  }
  return true;
}

void Round::CheckTimelinesDeleted(const std::vector<std::pair<std::string, std::string>>& deleted) {
  std::vector<std::string> left;
  const absl::Time deadline = absl::Now() + kTimelineDeleteWait;
  do {
    left.clear();
    for (const auto& [branch, timeline] : deleted) {
      if (timeline.empty()) continue;
      std::vector<std::string> on;
      for (int i = 0; i < 3; ++i) {
        const std::string sk = absl::StrFormat("sk%d", i);
        SegmentCount c = CountSegments(stack_.safekeeper_dir(sk), timeline);
        if (c.exists) on.push_back(absl::StrFormat("%s: %d segments", sk, c.segments));
      }
      if (!on.empty()) left.push_back(branch + " (" + absl::StrJoin(on, ", ") + ")");
    }
    if (!left.empty()) absl::SleepFor(absl::Milliseconds(500));
  } while (!left.empty() && absl::Now() < deadline);
  if (!left.empty()) {
    AddDefect(
        "sk-timeline-deleted", "deleting a branch deletes its timeline on every safekeeper",
        absl::StrFormat("%d of %d deleted branches still have safekeeper timelines after "
                        "%s: %s",
                        left.size(), deleted.size(), absl::FormatDuration(kTimelineDeleteWait),
                        absl::StrJoin(left, "; ")));
  } else if (!deleted.empty()) {
    Log(absl::StrFormat("%d deleted branches left no safekeeper timeline", deleted.size()));
  }
}

void Round::CheckTrimmed() {
  auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
  auto main_branch = stack_.Branch("main");
  if (!client.ok() || !main_branch.ok()) return;
  PgClient& c = **client;
  std::string walfile;
  for (int i = 0; i < 40; ++i) {
    auto name = c.QueryValue("SELECT pg_walfile_name(pg_current_wal_lsn())");
    if (!name.ok()) return;
    walfile = *name;
    uint64_t seg = std::strtoull(walfile.substr(16).c_str(), nullptr, 16);
    if (i >= 2 && seg >= kMinWalSegments) break;
    (void)c.Exec(absl::StrFormat(kTouchSql, -2) + "; SELECT pg_switch_wal()");
  }
  (void)c.Exec("CHECKPOINT");
  const std::string timeline = main_branch->value("timeline_id", "");
  std::string report;
  bool trimmed = false;
  const absl::Time deadline = absl::Now() + kTrimWait;
  while (!trimmed && absl::Now() < deadline) {
    trimmed = true;
    report.clear();
    for (int i = 0; i < 3; ++i) {
      const std::string sk = absl::StrFormat("sk%d", i);
      SegmentCount n = CountSegments(stack_.safekeeper_dir(sk), timeline);
      report += absl::StrFormat("%s=%d ", sk, n.segments);
      trimmed &= n.segments <= config_.trim_max_segments;
    }
    if (!trimmed) absl::SleepFor(absl::Seconds(1));
  }
  if (!trimmed) {
    CliResult lsn = stack_.Cambium({"lsn", "main"}, absl::Seconds(30));
    AddDefect("safekeepers-trimmed",
              absl::StrFormat("every safekeeper keeps at most %d segments of main once the "
                              "pageserver archived its WAL",
                              config_.trim_max_segments),
              absl::StrFormat("after %s: %s(WAL at %s, archived up to %s)",
                              absl::FormatDuration(kTrimWait), report, walfile,
                              lsn.ok() ? lsn.out.value("lsn", "?") : lsn.Describe()));
  } else {
    Log("safekeepers trimmed: " + report);
  }
}

// GC until its cutoff has passed `lsn` (a commit past the PITR window is needed for
// that; a few tries). The last result, or an error.
absl::StatusOr<ChaosStack::GcResult> Round::GcPast(PgClient& c, const std::string& lsn) {
  const absl::Duration window = stack_.options().pitr_window + absl::Seconds(1);
  const Lsn want = Lsn::Parse(lsn).value_or(Lsn(0));
  absl::StatusOr<ChaosStack::GcResult> gc = absl::UnknownError("not run");
  for (int attempt = 0; attempt < 4; ++attempt) {
    (void)c.Exec(absl::StrFormat(kTouchSql, -3));
    absl::SleepFor(window);
    (void)c.Exec(absl::StrFormat(kTouchSql, -3));
    gc = stack_.RunGc();
    if (!gc.ok() || Lsn::Parse(gc->cutoff).value_or(Lsn(0)) >= want) return gc;
  }
  return absl::DeadlineExceededError(
      absl::StrFormat("GC's cutoff stays at %s, below %s, 4 PITR windows later", gc->cutoff, lsn));
}

void Round::CheckGcReclaims() {
  auto client = PgClient::Connect(main_.Get(), absl::Seconds(10));
  if (!client.ok()) return;
  PgClient& c = **client;
  // Three tables of 1,000 rows of 1.5 kB, each removed another way; each is a
  // third of the bytes, so one way that reclaims nothing fails the 80% bar. The
  // rows are random bytes: the pageserver stores pages compressed, and a page of
  // repeated characters (as these were) takes a few hundred bytes, so what GC
  // reclaimed of it vanished beside the round's other changes (seed 0: 3%).
  // CAMBIUM_CHAOS_GC_WAYS=drop,truncate,vacuum_full picks ways (to tell which).
  const char* env = std::getenv("CAMBIUM_CHAOS_GC_WAYS");
  const std::string ways_text = env && *env ? env : "drop,truncate,vacuum_full";
  const GcProbes probes =
      MakeGcProbes(absl::StrFormat("gc_probe_%d_", seed_), absl::StrSplit(ways_text, ','));
  absl::Status s;
  for (const std::string& stmt : probes.create) {
    if (s.ok()) s = c.Exec(stmt);
  }
  auto bytes = c.QueryValue(probes.size_sql);
  auto created = c.QueryValue("SELECT pg_current_wal_insert_lsn()");
  if (!s.ok() || !bytes.ok() || !created.ok()) {
    Log("gc probes not created: " + s.ToString());
    return;
  }
  const int64_t probe = std::atoll(bytes->c_str());
  // GC #1 past the probes' creation: what is older goes; the probes' blocks stay.
  auto gc1 = GcPast(c, *created);
  // The baseline after a checkpoint: the round's load leaves dirty buffers that a
  // later checkpoint would write as new versions, hiding what GC frees (seed 130:
  // 69% with about 1.5 MB written between the two measurements).
  (void)c.Exec("CHECKPOINT");
  auto before = stack_.Branch("main");
  for (const std::string& stmt : probes.remove) {
    if (s.ok()) s = c.Exec(stmt);
  }
  auto dropped = c.QueryValue("SELECT pg_current_wal_insert_lsn()");
  // GC #2 past the drops and the checkpoint: the old files' blocks are garbage.
  auto gc2 = dropped.ok() ? GcPast(c, *dropped) : dropped.status();
  auto after = stack_.Branch("main");
  for (const std::string& stmt : probes.cleanup) (void)c.Exec(stmt);
  if (!gc1.ok() || !gc2.ok() || !before.ok() || !after.ok() || !s.ok()) {
    AddDefect("gc-reclaims-dropped", "GC (RunGc) runs past the drops on the chaos tenant",
              absl::StrFormat("gc1 %s, gc2 %s, drops: %s", gc1.status().ToString(),
                              gc2.status().ToString(), s.ToString()));
    return;
  }
  // Page and file versions only: the removals' own WAL (a DELETE before VACUUM FULL
  // logs a full image of every page) stays until its segment is pruned.
  auto versions = [](const nlohmann::json& b) {
    return ToInt(b, "unique_size_bytes") - ToInt(b, "unique_wal_bytes");
  };
  const int64_t u1 = versions(*before), u2 = versions(*after);
  const int64_t reclaimed = u1 - u2;
  const std::string what = absl::StrFormat(
      "%s of tables of %d bytes together (below %s), then GC (cutoff %s): main's unique version "
      "bytes "
      "%d -> %d bytes (%d reclaimed, %.0f%%; GC removed %d then %d versions)",
      ways_text, probe, *dropped, gc2->cutoff, u1, u2, reclaimed,
      100.0 * reclaimed / std::max<int64_t>(1, probe), gc1->versions_removed,
      gc2->versions_removed);
  if (reclaimed < static_cast<int64_t>(kGcReclaimShare * probe)) {
    AddDefect("gc-reclaims-dropped",
              absl::StrFormat("GC reclaims at least %.0f%% of the bytes of dropped, truncated "
                              "and VACUUM FULLed tables once that is older than the PITR window "
                              "(each table is a third: about 67%% means one way reclaims nothing)",
                              kGcReclaimShare * 100),
              what);
  } else {
    Log(what);
  }
}

}  // namespace cambium::chaos
