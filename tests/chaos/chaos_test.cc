// The chaos suite (issue 9): seeded rounds of load, branches and faults on a real
// local stack driven through the `cambium` CLI. See tests/chaos/README.md.
//
// Which rounds run (environment; tests/chaos/run.sh sets these from its flags):
//   CAMBIUM_CHAOS_SEED=n          one round, seed n, on a fresh stack
//   CAMBIUM_CHAOS_SEEDS=a,b,c     these rounds in order (default: the CI set 0,1,
//                                 which covers every fault class once)
//   CAMBIUM_CHAOS_ROUNDS=N        N rounds with seeds BASE..BASE+N-1, where BASE is
//   CAMBIUM_CHAOS_BASE=b          b (default 0)
//   CAMBIUM_CHAOS_STACK_ROUNDS=k  rounds sharing one stack before a fresh one (default 4)
//   CAMBIUM_CHAOS_SCALE=s         pgbench scale (default 1)
//   CAMBIUM_CHAOS_FAULTS=k        faults per round (default 6; see RoundConfig)
//   CAMBIUM_CHAOS_ONLY=a,b        only these fault classes (names as the schedule
//                                 prints them), to study one fault
//   CAMBIUM_CHAOS_GC_WAYS=a,b     how the GC probes are removed (drop, truncate,
//                                 vacuum_full; default all three)
//   CAMBIUM_CHAOS_ARTIFACTS=dir   where logs of rounds with defects go
//                                 (default ./chaos-artifacts)
// A round with defects prints CHAOS_SEED=<n> and `tests/chaos/run.sh --seed <n>`.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/chaos/chaos_round.h"

namespace cambium::chaos {
namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

int64_t EnvInt(const char* name, int64_t fallback) {
  int64_t v;
  return absl::SimpleAtoi(Env(name), &v) ? v : fallback;
}

std::vector<uint64_t> ChosenSeeds() {
  std::vector<uint64_t> seeds;
  if (!Env("CAMBIUM_CHAOS_SEED").empty()) {
    seeds.push_back(static_cast<uint64_t>(EnvInt("CAMBIUM_CHAOS_SEED", 0)));
  } else if (!Env("CAMBIUM_CHAOS_ROUNDS").empty()) {
    const int64_t base = EnvInt("CAMBIUM_CHAOS_BASE", 0);
    for (int64_t i = 0; i < EnvInt("CAMBIUM_CHAOS_ROUNDS", 1); ++i) seeds.push_back(base + i);
  } else {
    for (absl::string_view s :
         absl::StrSplit(Env("CAMBIUM_CHAOS_SEEDS", "0,1"), ',', absl::SkipWhitespace())) {
      uint64_t v;
      if (absl::SimpleAtoi(s, &v)) seeds.push_back(v);
    }
  }
  return seeds;
}

// One stack and its workload; replaced after a round that left it unusable.
struct Bench {
  std::unique_ptr<ChaosStack> stack;
  MainTarget main;
  std::unique_ptr<Workload> load;
  int rounds = 0;

  void Reset() {
    if (load) load->Stop();
    load.reset();
    stack.reset();
    rounds = 0;
  }
};

absl::Status NewBench(Bench& b, uint64_t seed, Reporter& reporter) {
  b.Reset();
  const absl::Time t0 = absl::Now();
  auto stack = ChaosStack::Create();
  if (!stack.ok()) return stack.status();
  b.stack = *std::move(stack);
  auto conn = b.stack->ConnectionString("main");
  if (!conn.ok()) return conn.status();
  b.main.Set(*conn);
  const int scale = static_cast<int>(EnvInt("CAMBIUM_CHAOS_SCALE", 1));
  if (absl::Status s = PrepareSchema(*conn, scale); !s.ok()) return s;
  b.load = std::make_unique<Workload>(&b.main, /*first_ack_id=*/1, seed);
  reporter.Log(absl::StrFormat("stack ready in %s at %s (pgbench scale %d)",
                               absl::FormatDuration(absl::Now() - t0), b.stack->data_dir(), scale));
  return absl::OkStatus();
}

std::string Summary(const std::vector<Defect>& defects) {
  std::map<std::string, std::vector<std::string>> by_check;
  for (const Defect& d : defects) {
    by_check[d.check].push_back(absl::StrFormat("%d", d.seed));
  }
  std::string out;
  for (const auto& [check, seeds] : by_check) {
    out += absl::StrFormat("  %-28s x%d (CHAOS_SEED=%s)\n", check, seeds.size(),
                           absl::StrJoin(seeds, ","));
  }
  return out;
}

// Runs `seeds` in order; returns the seeds of rounds with defects.
std::vector<uint64_t> RunRounds(const std::vector<uint64_t>& seeds, RoundConfig config,
                                const std::string& artifacts, Reporter& reporter) {
  const int stack_rounds = static_cast<int>(EnvInt("CAMBIUM_CHAOS_STACK_ROUNDS", 4));
  Bench bench;
  std::vector<uint64_t> failed;
  auto fail = [&](uint64_t seed) {
    if (failed.empty() || failed.back() != seed) failed.push_back(seed);
  };
  for (uint64_t seed : seeds) {
    // A stack that fails to come up is a defect; the round still gets a second try.
    for (int attempt = 0; attempt < 2 && (!bench.stack || bench.rounds >= stack_rounds);
         ++attempt) {
      absl::Status s = NewBench(bench, seed, reporter);
      if (s.ok()) break;
      reporter.AddDefect({.seed = seed,
                          .fault = "none",
                          .check = "stack-setup",
                          .expected = "`cambium up` brings up a stack with pgbench data",
                          .actual = s.ToString()});
      if (bench.stack) {
        CopyLogs(bench.stack->data_dir(), absl::StrFormat("%s/seed-%d-setup", artifacts, seed));
      }
      fail(seed);
      bench.Reset();
    }
    if (!bench.stack) continue;
    const size_t before = reporter.defect_count();
    bench.load->Reseed(seed);
    bool keep;
    {
      Round round(*bench.stack, bench.main, *bench.load, reporter, seed, config);
      keep = round.Run();
    }
    ++bench.rounds;
    if (reporter.defect_count() > before) {
      fail(seed);
      const std::string dest = absl::StrFormat("%s/seed-%d", artifacts, seed);
      CopyLogs(bench.stack->data_dir(), dest);
      reporter.Log("logs of the round copied to " + dest);
    }
    if (!keep) {
      reporter.Log("the stack is replaced before the next round");
      bench.Reset();
    }
  }
  bench.Reset();
  return failed;
}

TEST(Chaos, SeededRoundsLoseNothingAndServeNothingWrong) {
  if (geteuid() != 0) GTEST_SKIP() << "the chaos suite mounts a tmpfs: run it as root";
  if (!std::filesystem::exists("/dev/fuse")) GTEST_SKIP() << "no /dev/fuse";
  const std::vector<uint64_t> seeds = ChosenSeeds();
  ASSERT_FALSE(seeds.empty()) << "no seeds chosen";
  const std::string artifacts =
      std::filesystem::absolute(Env("CAMBIUM_CHAOS_ARTIFACTS", "chaos-artifacts")).string();
  RoundConfig config;
  config.faults_per_round = static_cast<int>(EnvInt("CAMBIUM_CHAOS_FAULTS", 6));
  for (absl::string_view name :
       absl::StrSplit(Env("CAMBIUM_CHAOS_ONLY"), ',', absl::SkipWhitespace())) {
    config.only.push_back(FaultByName(std::string(name)));
    ASSERT_NE(config.only.back(), FaultKind::kCount) << "no fault class named " << name;
  }
  Reporter reporter;
  reporter.Log("seeds: " + absl::StrJoin(seeds, ",") +
               (config.only.empty() ? "" : "; only " + Env("CAMBIUM_CHAOS_ONLY")));
  const absl::Time start = absl::Now();
  const std::vector<uint64_t> failed = RunRounds(seeds, config, artifacts, reporter);
  reporter.Log(absl::StrFormat("%d round(s) in %s; %d defect(s)", seeds.size(),
                               absl::FormatDuration(absl::Now() - start), reporter.defect_count()));
  reporter.WriteLog(artifacts + "/chaos.log");
  const std::vector<Defect> defects = reporter.Defects();
  std::string rerun;
  for (uint64_t s : failed) {
    rerun += absl::StrFormat("  CHAOS_SEED=%d: tests/chaos/run.sh --seed %d\n", s, s);
  }
  EXPECT_TRUE(defects.empty()) << "defects by check:\n"
                               << Summary(defects) << "failing rounds:\n"
                               << rerun << "the whole sequence: tests/chaos/run.sh --seeds "
                               << absl::StrJoin(seeds, ",") << "\nlogs: " << artifacts;
}

}  // namespace
}  // namespace cambium::chaos
