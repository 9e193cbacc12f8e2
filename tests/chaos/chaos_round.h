// Round: one seeded chaos round on a running ChaosStack (see tests/chaos/README.md).
//
// A round: print the fault schedule drawn from the seed; run the workload
// (recorder, pgbench, churn) while a brancher thread creates branches at exact
// LSNs, at head and late at earlier LSNs; inject the scheduled faults one after
// the other, checking each fault's own expectations (writes stall or continue,
// daemons come back, endpoints restart at once, idle writers stay live,
// corruption is detected and never served); stop the load, bring the stack back
// if it is not, and verify: no acknowledged commit lost, pgbench balances,
// pg_amcheck on main and every branch, every branch equal to its parent at its
// LSN, every safekeeper trimmed, deleted branches leave no safekeeper timeline,
// GC reclaims a dropped table. Every failed expectation is a Defect with the seed.
//
// Every random choice comes from the seed: fault classes and parameters from the
// round's generator, the brancher and the churn from generators derived from it.
// Timing (what the load has done when a fault hits) is not reproducible; the
// schedule is.
//
// Thread-safety: Run() is called from one thread; the round's own brancher thread
// shares state under mu_.
#ifndef CAMBIUM_TESTS_CHAOS_CHAOS_ROUND_H_
#define CAMBIUM_TESTS_CHAOS_CHAOS_ROUND_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/chaos/chaos_stack.h"
#include "tests/chaos/checks.h"
#include "tests/chaos/report.h"
#include "tests/chaos/workload.h"

namespace cambium::chaos {

enum class FaultKind {
  kKillPageserver,
  kKillSafekeeper0,
  kKillSafekeeper1,
  kKillSafekeeper2,
  kKillTwoSafekeepers,
  kKillShim,
  kKillPostgres,
  kSigstop,
  kPageserverRestartIdle,
  kDiskFull,
  kFlipRocksDb,
  kFlipSafekeeper,
  kCount,
};
constexpr int kFaultKinds = static_cast<int>(FaultKind::kCount);
const char* FaultName(FaultKind kind);
// The fault class named `name` (as FaultName prints it), or kCount.
FaultKind FaultByName(const std::string& name);

// What SIGSTOP stops.
enum class StopTarget { kMainShim, kPageserver, kSafekeeper, kTwoSafekeepers, kIdleShim, kCount };

struct FaultSpec {
  FaultKind kind = FaultKind::kKillPageserver;
  absl::Duration delay;  // load before the fault
  absl::Duration hold;   // how long the fault lasts (where that is the fault's choice)
  int a = 0;             // a safekeeper, a SIGSTOP target, a variant
  int b = 0;             // a second safekeeper, a variant
  uint64_t salt = 0;     // file and offset choices
  std::string Describe() const;
};

struct RoundConfig {
  // Faults per round. Seeds below ceil(kFaultKinds / k) (the CI set: 0 and 1) get
  // classes (k*seed + j) mod kFaultKinds for j < k, so together they cover every
  // class; other seeds draw k distinct classes in a random order. Default: 6.
  int faults_per_round = 6;
  // Only these fault classes (in this order) instead of all of them, to study one
  // fault. Default: empty (all).
  std::vector<FaultKind> only;
  // Branches the brancher creates during the load. Default: 3.
  int max_branches = 3;
  // Load after the last fault. Default: 2 s.
  absl::Duration tail = absl::Seconds(2);
  // The pageserver's writer lease (its default). Default: 10 s.
  absl::Duration lease = absl::Seconds(10);
  // How long a crashed daemon may take to be restarted by the stack itself.
  // Default: 10 s.
  absl::Duration supervisor_wait = absl::Seconds(10);
  // How long writes may take to resume after a fault ends. Default: 60 s.
  absl::Duration resume_timeout = absl::Seconds(60);
  // A commit acknowledged this long after quorum was lost is a defect. Default: 2 s.
  absl::Duration stall_grace = absl::Seconds(2);
  // WAL segments a safekeeper may keep of main once everything is archived.
  // Default: 4.
  int trim_max_segments = 4;
};

struct BranchPlan {
  enum class Kind { kAtLsn, kAtHead, kLate };
  std::string name;
  Kind kind = Kind::kAtLsn;
  std::string fault;        // in effect when it was created
  std::string lsn;          // requested (kAtLsn, kLate)
  Sample expected;          // kAtLsn, kLate
  int64_t marker = 0;       // kAtHead
  size_t acked_before = 0;  // kAtHead: recorder acks before the command started
  bool created = false;
  std::string branch_lsn;  // as created
  std::string timeline;    // hex
  std::string error;
};

class Round {
 public:
  Round(ChaosStack& stack, MainTarget& main, Workload& load, Reporter& reporter, uint64_t seed,
        RoundConfig config);
  ~Round();

  // Runs the round. Returns false if the stack should be replaced before the next
  // round (it could not be made healthy, or data checks failed).
  bool Run();
  std::string ScheduleText() const;

 private:
  // ---- load phase (chaos_round.cc)
  void BrancherLoop(uint64_t seed);
  void CreatePlannedBranch(BranchPlan::Kind kind, std::mt19937_64& rng);
  bool BranchAtLsn(BranchPlan& plan, PgClient* client);
  bool BranchAtHead(BranchPlan& plan, PgClient& client);
  std::string NextBranchName(const char* tag);
  void AddPlan(BranchPlan plan);

  // ---- faults (faults.cc)
  void Inject(const FaultSpec& f);
  void KillDaemon(const std::string& name);
  void KillTwoSafekeepers(const FaultSpec& f);
  enum class PostgresKill { kNone, kInstance, kPostmasterOnly };
  void KillEndpointProcess(bool shim, PostgresKill postgres);
  void Sigstop(const FaultSpec& f);
  void PageserverRestartIdle(const FaultSpec& f);
  void DiskFull(const FaultSpec& f);
  void FlipRocksDb(const FaultSpec& f);
  // Reads branch `plan` (a sample and pg_amcheck) on a pageserver with a damaged
  // file: a wrong answer is a defect; returns whether an error was seen.
  bool ReadThroughDamage(const BranchPlan& plan);
  // The pageserver's table file to damage (see corruption.cc); "" if none.
  std::string ChooseTableFile(uint64_t* size);
  void FlipSafekeeper(const FaultSpec& f);

  // ---- fault helpers (fault_helpers.cc)
  // After `name` died (old pid): waits for the stack to restart it; if it does not,
  // records a supervisor defect (unless `may_refuse`) and runs `cambium up`.
  // Returns whether the daemon runs afterwards.
  bool AwaitRestart(const std::string& name, pid_t old_pid, bool may_refuse = false);
  bool AwaitRestarts(const std::vector<std::pair<std::string, pid_t>>& dead,
                     bool may_refuse = false);
  // `endpoint stop main && endpoint start main` must work at once; retried until it
  // does (bounded) so the round goes on.
  void RestartMainAtOnce();
  // Writes on main must resume: `n` more acknowledgements within resume_timeout.
  // If they do not: a defect, then EnsureHealthy so the round can go on.
  bool ExpectWritesResume(int n = 3);
  // "" once `cambium lsn main` reaches main's current flush LSN (within `timeout`),
  // else what it shows.
  std::string ArchiveCatchesUp(absl::Duration timeout);
  // No acknowledgement in (from + stall_grace, to).
  void ExpectNoAcksBetween(absl::Time from, absl::Time to, const std::string& why);
  // A branch at head with an endpoint that stays idle; returns its name.
  absl::StatusOr<std::string> StartIdleBranch();
  void DropIdleBranch(const std::string& name);
  // `branch delete NAME` must be refused while NAME's endpoint runs.
  void ExpectDeleteRefused(const std::string& name, const std::string& why);
  absl::StatusOr<pid_t> DaemonPid(const std::string& name);
  std::string StackErrorLines(const std::string& endpoint = "main");

  // ---- verification (verify.cc)
  bool Verify();
  // Makes the stack take writes on main again, escalating (up; kill main, down,
  // up). An error if nothing helped.
  absl::Status EnsureHealthy();
  // A write on main succeeds (retried for 30 s); follows main's connection string.
  absl::Status ProbeMainWrites();
  void VerifyMain(PgClient& client);
  // Starts an endpoint on the branch, checks it, stops it and deletes the branch;
  // true if the branch was deleted.
  bool VerifyBranch(const BranchPlan& plan);
  void CheckEndpoint(PgClient& client, const std::string& conninfo, const std::string& what);
  void CheckTrimmed();
  void CheckGcReclaims();
  absl::StatusOr<ChaosStack::GcResult> GcPast(PgClient& client, const std::string& lsn);
  void CheckTimelinesDeleted(const std::vector<std::pair<std::string, std::string>>& deleted);

  void AddDefect(const std::string& check, const std::string& expected, const std::string& actual,
                 const std::string& logs = "");
  void Log(const std::string& line) { reporter_.Log(line); }
  std::string current_fault() const;
  void set_current_fault(const std::string& f);

  ChaosStack& stack_;
  MainTarget& main_;
  Workload& load_;
  Reporter& reporter_;
  const uint64_t seed_;
  const RoundConfig config_;
  std::mt19937_64 rng_;
  std::vector<FaultSpec> faults_;

  mutable std::mutex mu_;
  std::string current_fault_ = "none";  // GUARDED_BY(mu_)
  std::vector<BranchPlan> plans_;       // GUARDED_BY(mu_)
  std::vector<BranchPlan> lsn_pool_;    // GUARDED_BY(mu_): exact points for late branches
  int branch_seq_ = 0;                  // GUARDED_BY(mu_)
  int64_t next_marker_ = 0;             // GUARDED_BY(mu_)
  std::vector<int64_t> markers_;        // GUARDED_BY(mu_): committed markers
  bool data_defect_ = false;            // GUARDED_BY(mu_)
  std::atomic<bool> stop_brancher_{false};
  std::thread brancher_;
};

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_CHAOS_ROUND_H_
