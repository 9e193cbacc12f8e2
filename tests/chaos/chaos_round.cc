// Round: the schedule, the load phase and the brancher. Faults are in faults.cc
// and fault_helpers.cc, the checks after the load in verify.cc.
#include "tests/chaos/chaos_round.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/lsn.h"

namespace cambium::chaos {
namespace {

absl::Duration UniformDuration(std::mt19937_64& rng, absl::Duration lo, absl::Duration hi) {
  const int64_t ms = std::uniform_int_distribution<int64_t>(absl::ToInt64Milliseconds(lo),
                                                            absl::ToInt64Milliseconds(hi))(rng);
  return absl::Milliseconds(ms);
}

const char* StopTargetName(int t) {
  switch (static_cast<StopTarget>(t)) {
    case StopTarget::kMainShim:
      return "main-shim";
    case StopTarget::kPageserver:
      return "pageserver";
    case StopTarget::kSafekeeper:
      return "safekeeper";
    case StopTarget::kTwoSafekeepers:
      return "two-safekeepers";
    case StopTarget::kIdleShim:
      return "idle-branch-shim";
    default:
      return "?";
  }
}

// How long a branch at an LSN may wait for the archive to reach that LSN.
constexpr absl::Duration kArchiveWait = absl::Seconds(20);

}  // namespace

const char* FaultName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillPageserver:
      return "kill9-pageserver";
    case FaultKind::kKillSafekeeper0:
      return "kill9-sk0";
    case FaultKind::kKillSafekeeper1:
      return "kill9-sk1";
    case FaultKind::kKillSafekeeper2:
      return "kill9-sk2";
    case FaultKind::kKillTwoSafekeepers:
      return "kill9-two-safekeepers";
    case FaultKind::kKillShim:
      return "kill9-shim";
    case FaultKind::kKillPostgres:
      return "kill9-postgres";
    case FaultKind::kSigstop:
      return "sigstop";
    case FaultKind::kPageserverRestartIdle:
      return "pageserver-restart-idle";
    case FaultKind::kDiskFull:
      return "disk-full";
    case FaultKind::kFlipRocksDb:
      return "flip-byte-rocksdb";
    case FaultKind::kFlipSafekeeper:
      return "flip-byte-safekeeper";
    default:
      return "?";
  }
}

FaultKind FaultByName(const std::string& name) {
  for (int k = 0; k < kFaultKinds; ++k) {
    if (name == FaultName(static_cast<FaultKind>(k))) return static_cast<FaultKind>(k);
  }
  return FaultKind::kCount;
}

std::string FaultSpec::Describe() const {
  std::string s = absl::StrFormat("%s after %s", FaultName(kind), absl::FormatDuration(delay));
  switch (kind) {
    case FaultKind::kKillTwoSafekeepers:
      return s + absl::StrFormat(" (sk%d+sk%d, hold %s)", a, b, absl::FormatDuration(hold));
    case FaultKind::kKillShim:
      return s + (a ? " (shim and postgres)" : " (shim only)");
    case FaultKind::kKillPostgres:
      return s + (a ? " (postmaster only)" : " (postmaster and backends)");
    case FaultKind::kSigstop:
      return s + absl::StrFormat(" (%s%s, hold %s)", StopTargetName(a),
                                 a == static_cast<int>(StopTarget::kSafekeeper) ||
                                         a == static_cast<int>(StopTarget::kTwoSafekeepers)
                                     ? absl::StrFormat(" sk%d", b)
                                     : "",
                                 absl::FormatDuration(hold));
    case FaultKind::kPageserverRestartIdle:
      return s + (a ? " (SIGTERM restart)" : " (kill -9 restart)");
    case FaultKind::kDiskFull:
      return s + absl::StrFormat(" (hold %s%s)", absl::FormatDuration(hold),
                                 a ? ", postgres killed while full" : "");
    case FaultKind::kFlipSafekeeper:
      return s + absl::StrFormat(" (sk%d, salt %d)", a, salt % 100000);
    case FaultKind::kFlipRocksDb:
      return s + absl::StrFormat(" (salt %d)", salt % 100000);
    default:
      return s;
  }
}

Round::Round(ChaosStack& stack, MainTarget& main, Workload& load, Reporter& reporter, uint64_t seed,
             RoundConfig config)
    : stack_(stack),
      main_(main),
      load_(load),
      reporter_(reporter),
      seed_(seed),
      config_(config),
      rng_(seed) {
  next_marker_ = static_cast<int64_t>(seed % 1000000) * 1000000 + 1;
  std::vector<FaultKind> classes = config_.only;
  if (classes.empty()) {
    for (int k = 0; k < kFaultKinds; ++k) classes.push_back(static_cast<FaultKind>(k));
  }
  const int k = std::max(1, config_.faults_per_round);
  const uint64_t covering_seeds = (classes.size() + k - 1) / k;
  if (seed >= covering_seeds) std::shuffle(classes.begin(), classes.end(), rng_);
  for (int j = 0; j < k; ++j) {
    FaultSpec f;
    const uint64_t slot = seed < covering_seeds ? k * seed + j : j;
    f.kind = classes[slot % classes.size()];
    f.delay = UniformDuration(rng_, absl::Seconds(2), absl::Seconds(4));
    f.hold = UniformDuration(rng_, absl::Seconds(3), absl::Seconds(6));
    f.a = std::uniform_int_distribution<int>(0, 2)(rng_);
    f.b = (f.a + std::uniform_int_distribution<int>(1, 2)(rng_)) % 3;
    f.salt = rng_();
    if (f.kind == FaultKind::kKillShim || f.kind == FaultKind::kKillPostgres ||
        f.kind == FaultKind::kPageserverRestartIdle || f.kind == FaultKind::kDiskFull) {
      f.a = static_cast<int>(f.salt % 2);
    }
    if (f.kind == FaultKind::kSigstop) {
      f.b = f.a;  // the safekeeper, for the safekeeper targets
      f.a = static_cast<int>(f.salt % static_cast<int>(StopTarget::kCount));
      f.hold = config_.lease + absl::Seconds(3);
    }
    faults_.push_back(f);
  }
}

Round::~Round() {
  stop_brancher_ = true;
  if (brancher_.joinable()) brancher_.join();
}

std::string Round::ScheduleText() const {
  std::vector<std::string> parts;
  for (const FaultSpec& f : faults_) parts.push_back(f.Describe());
  return absl::StrJoin(parts, "; ");
}

std::string Round::current_fault() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_fault_;
}

void Round::set_current_fault(const std::string& f) {
  std::lock_guard<std::mutex> lock(mu_);
  current_fault_ = f;
}

void Round::AddDefect(const std::string& check, const std::string& expected,
                      const std::string& actual, const std::string& logs) {
  static const char* kDataChecks[] = {"acked-commits", "balances",    "amcheck",
                                      "branch-exact",  "head-branch", "corruption-served"};
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const char* c : kDataChecks) data_defect_ |= check == c;
  }
  reporter_.AddDefect(Defect{.seed = seed_,
                             .fault = current_fault(),
                             .check = check,
                             .expected = expected,
                             .actual = actual,
                             .logs = logs});
}

bool Round::Run() {
  Log(absl::StrFormat("round CHAOS_SEED=%d schedule: %s", seed_, ScheduleText()));
  const size_t defects_before = reporter_.defect_count();
  load_.Resume();
  load_.Start();
  stop_brancher_ = false;
  brancher_ = std::thread([this, s = rng_()] { BrancherLoop(s); });
  for (const FaultSpec& f : faults_) {
    absl::SleepFor(f.delay);
    set_current_fault(f.Describe());
    Log("inject " + f.Describe());
    Inject(f);
    Log(absl::StrFormat("after %s: %s", FaultName(f.kind), load_.Summary()));
  }
  absl::SleepFor(config_.tail);
  stop_brancher_ = true;
  brancher_.join();
  stop_brancher_ = false;  // Verify creates a branch too, with the usual retries
  load_.Stop();
  set_current_fault("none (after the round's faults)");
  Log("load stopped: " + load_.Summary());
  const bool healthy = Verify();
  const size_t found = reporter_.defect_count() - defects_before;
  auto free_bytes = stack_.FreeBytes();
  Log(absl::StrFormat("tmpfs: %d MiB used of %d MiB",
                      free_bytes.ok() ? (stack_.options().tmpfs_bytes - *free_bytes) >> 20 : 0,
                      stack_.options().tmpfs_bytes >> 20));
  Log(absl::StrFormat(
      "round CHAOS_SEED=%d done: %d defect(s)%s", seed_, found,
      found ? absl::StrFormat("; rerun: tests/chaos/run.sh --seed %d", seed_) : ""));
  std::lock_guard<std::mutex> lock(mu_);
  return healthy && !data_defect_;
}

// ---- the brancher ----

std::string Round::NextBranchName(const char* tag) {
  std::lock_guard<std::mutex> lock(mu_);
  return absl::StrFormat("c%d-%s%d", seed_, tag, ++branch_seq_);
}

void Round::AddPlan(BranchPlan plan) {
  Log(absl::StrFormat(
      "branch %s (%s) %s%s", plan.name,
      plan.kind == BranchPlan::Kind::kAtHead ? "head"
      : plan.kind == BranchPlan::Kind::kLate ? "late, at " + plan.lsn
                                             : "at " + plan.lsn,
      plan.created ? "created at " + plan.branch_lsn : "not created: ", plan.error));
  std::lock_guard<std::mutex> lock(mu_);
  if (plan.created && plan.kind == BranchPlan::Kind::kAtLsn) lsn_pool_.push_back(plan);
  plans_.push_back(std::move(plan));
}

void Round::BrancherLoop(uint64_t seed) {
  std::mt19937_64 rng(seed);
  int made = 0;
  while (!stop_brancher_ && made < config_.max_branches) {
    const absl::Time wake =
        absl::Now() + UniformDuration(rng, absl::Milliseconds(1500), absl::Milliseconds(6000));
    while (!stop_brancher_ && absl::Now() < wake) absl::SleepFor(absl::Milliseconds(100));
    if (stop_brancher_) break;
    bool have_pool;
    {
      std::lock_guard<std::mutex> lock(mu_);
      have_pool = !lsn_pool_.empty();
    }
    const int pick = std::uniform_int_distribution<int>(0, 9)(rng);
    BranchPlan::Kind kind = pick < 4 ? BranchPlan::Kind::kAtLsn : BranchPlan::Kind::kAtHead;
    if (pick >= 8 && have_pool) kind = BranchPlan::Kind::kLate;
    CreatePlannedBranch(kind, rng);
    ++made;
  }
}

void Round::CreatePlannedBranch(BranchPlan::Kind kind, std::mt19937_64& rng) {
  BranchPlan plan;
  plan.kind = kind;
  plan.fault = current_fault();
  plan.name = NextBranchName(kind == BranchPlan::Kind::kAtHead ? "h"
                             : kind == BranchPlan::Kind::kLate ? "l"
                                                               : "x");
  if (kind == BranchPlan::Kind::kLate) {
    std::lock_guard<std::mutex> lock(mu_);
    const BranchPlan& old = lsn_pool_[rng() % lsn_pool_.size()];
    plan.lsn = old.lsn;
    plan.expected = old.expected;
  }
  auto client = PgClient::Connect(main_.Get(), absl::Seconds(5));
  if (!client.ok() && kind != BranchPlan::Kind::kLate) {
    plan.error = std::string(client.status().message());
    AddPlan(std::move(plan));
    return;
  }
  if (kind == BranchPlan::Kind::kAtHead) {
    BranchAtHead(plan, **client);
  } else {
    BranchAtLsn(plan, kind == BranchPlan::Kind::kAtLsn ? client->get() : nullptr);
  }
  AddPlan(std::move(plan));
}

bool Round::BranchAtLsn(BranchPlan& plan, PgClient* client) {
  if (client != nullptr) {
    auto point = SampleUnderLock(*client);
    if (!point.ok()) {
      plan.error = "sample: " + std::string(point.status().message());
      return false;
    }
    plan.lsn = point->lsn;
    plan.expected = point->sample;
  }
  // The archive must have reached the LSN before a branch can start there.
  const Lsn want = Lsn::Parse(plan.lsn).value_or(Lsn(0));
  const absl::Time deadline = absl::Now() + kArchiveWait;
  CliResult r;
  for (;;) {
    r = stack_.Cambium({"branch", "create", plan.name, "--lsn", plan.lsn}, absl::Minutes(1));
    if (r.ok() || absl::Now() > deadline || stop_brancher_) break;
    // Waiting for the archive is expected; anything else is retried too (a fault may
    // be in effect) until the deadline.
    CliResult lsn = stack_.Cambium({"lsn", "main"}, absl::Seconds(30));
    const std::string head = lsn.ok() ? lsn.out.value("lsn", "") : "";
    const bool archived = !head.empty() && Lsn::Parse(head).value_or(Lsn(0)) >= want;
    absl::SleepFor(absl::Milliseconds(archived ? 100 : 500));
  }
  if (!r.ok()) {
    plan.error = r.Describe();
    return false;
  }
  plan.created = true;
  plan.branch_lsn = r.out.value("branch_lsn", "");
  plan.timeline = r.out.value("timeline_id", "");
  return true;
}

bool Round::BranchAtHead(BranchPlan& plan, PgClient& client) {
  int64_t marker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    marker = next_marker_++;
  }
  absl::Status s = client.Exec(absl::StrFormat("INSERT INTO markers VALUES (%d)", marker));
  if (!s.ok()) {
    plan.error = "marker: " + std::string(s.message());
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    markers_.push_back(marker);
  }
  plan.marker = marker;
  // Every commit acknowledged before the command starts must be in the branch.
  plan.acked_before = load_.recorder().acked_count();
  CliResult r = stack_.Cambium({"branch", "create", plan.name}, absl::Minutes(1));
  if (!r.ok()) {
    plan.error = r.Describe();
    return false;
  }
  plan.created = true;
  plan.branch_lsn = r.out.value("branch_lsn", "");
  plan.timeline = r.out.value("timeline_id", "");
  return true;
}

}  // namespace cambium::chaos
