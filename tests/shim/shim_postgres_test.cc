// Stock Postgres 15 on the Cambium FUSE mount, with a real pageserver and three
// safekeepers on loopback (issue: compute shim).
//
// Exactness is checked with a sampler: holding a SHARE lock on pgbench_history (no
// insert into it can be in flight), it records count(*), the WAL insert LSN and the
// clock. The state at that LSN, or at that time, must have exactly that many rows;
// pg_amcheck --heapallindexed must be clean on every side.
#include <atomic>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/harness/stack.h"
#include "tests/harness/temp_dir.h"

namespace cambium {
namespace {

using testing::Endpoint;
using testing::TestStack;

int64_t Number(Endpoint& ep, const std::string& sql) {
  auto out = ep.pg().Sql(sql);
  EXPECT_TRUE(out.ok()) << out.status();
  int64_t n = -1;
  EXPECT_TRUE(out.ok() && absl::SimpleAtoi(*out, &n)) << (out.ok() ? *out : "");
  return n;
}

// pg_amcheck over every database; returns its output on failure.
::testing::AssertionResult AmcheckClean(Endpoint& ep) {
  auto r = RunCommand({.argv = {testing::PostgresBin("pg_amcheck"), "--all", "--heapallindexed",
                                "--install-missing", "-h", ep.pg().socket_dir(), "-p",
                                std::to_string(ep.pg().port()), "-U", "postgres"}},
                      absl::Minutes(5));
  if (!r.ok()) return ::testing::AssertionFailure() << r.status();
  if (r->exit_code != 0) {
    return ::testing::AssertionFailure() << "pg_amcheck exit " << r->exit_code << ":\n"
                                         << r->out << r->err;
  }
  return ::testing::AssertionSuccess();
}

struct Sample {
  int64_t count = 0;
  Lsn lsn;
  absl::Time time;
};

// Counts pgbench_history under a SHARE lock, with the LSN and time of that state.
absl::StatusOr<Sample> TakeSample(Endpoint& ep) {
  auto out = ep.pg().Sql(
      "BEGIN; LOCK TABLE pgbench_history IN SHARE MODE; "
      "SELECT count(*) || ' ' || pg_current_wal_insert_lsn() || ' ' || "
      "(extract(epoch from clock_timestamp()) * 1000000)::bigint FROM pgbench_history; COMMIT;");
  if (!out.ok()) return out.status();
  std::vector<std::string> parts = absl::StrSplit(*out, ' ');
  Sample s;
  int64_t micros = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &s.count) ||
      !absl::SimpleAtoi(parts[2], &micros)) {
    return absl::InternalError("unexpected sample: " + *out);
  }
  auto lsn = Lsn::Parse(parts[1]);
  if (!lsn.ok()) return lsn.status();
  s.lsn = *lsn;
  s.time = absl::FromUnixMicros(micros);
  return s;
}

class ShimPostgresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto stack = TestStack::Create();
    ASSERT_TRUE(stack.ok()) << stack.status();
    stack_ = std::move(*stack);
  }

  std::unique_ptr<Endpoint> Start(const std::string& branch, bool takeover = false) {
    auto ep = stack_->StartEndpoint(branch, {.takeover = takeover});
    EXPECT_TRUE(ep.ok()) << ep.status();
    return ep.ok() ? std::move(*ep) : nullptr;
  }

  std::unique_ptr<TestStack> stack_;
};

TEST_F(ShimPostgresTest, PgbenchRunsAndAmcheckIsClean) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg().Pgbench({"-i", "-s", "2", "-q"}).ok());
  auto run = main->pg().Pgbench({"-c", "4", "-j", "2", "-T", "8", "-n"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(Number(*main, "SELECT count(*) FROM pgbench_accounts"), 200000);
  EXPECT_GT(Number(*main, "SELECT count(*) FROM pgbench_history"), 0);
  EXPECT_EQ(
      Number(
          *main,
          "SELECT sum(delta) - (SELECT sum(abalance) FROM pgbench_accounts) FROM pgbench_history"),
      0);
  EXPECT_TRUE(AmcheckClean(*main));
}

TEST_F(ShimPostgresTest, BranchWhilePgbenchRunsEqualsTheParentAtThatLsn) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg().Pgbench({"-i", "-s", "1", "-q"}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> load_runs{0};
  std::thread load([&] {
    while (!stop) {
      if (main->pg().Pgbench({"-c", "2", "-T", "2", "-n"}).ok()) ++load_runs;
    }
  });
  absl::Cleanup join_load = [&] {
    stop = true;
    load.join();
  };
  absl::SleepFor(absl::Seconds(3));
  auto sample = TakeSample(*main);
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(sample.ok()) << sample.status();
  // The branch point is taken under load: pgbench had committed rows by then.
  ASSERT_GT(sample->count, 0);
  ASSERT_TRUE(stack_->WaitForArchive("main", sample->lsn, absl::Seconds(60)).ok());
  auto branch = stack_->CreateBranch("preview", "main", sample->lsn);
  ASSERT_TRUE(branch.ok()) << branch.status();
  EXPECT_EQ(Lsn(branch->ancestor_lsn()), sample->lsn);
  auto preview = Start("preview");
  ASSERT_NE(preview, nullptr);
  EXPECT_EQ(Number(*preview, "SELECT count(*) FROM pgbench_history"), sample->count);
  std::move(join_load).Invoke();
  EXPECT_GT(load_runs.load(), 0);
  // Writes on either side are invisible to the other.
  ASSERT_TRUE(preview->pg().Sql("CREATE TABLE only_on_preview AS SELECT 1 AS x").ok());
  ASSERT_TRUE(main->pg().Sql("CREATE TABLE only_on_main AS SELECT 2 AS y").ok());
  EXPECT_FALSE(main->pg().Sql("SELECT * FROM only_on_preview").ok());
  EXPECT_FALSE(preview->pg().Sql("SELECT * FROM only_on_main").ok());
  EXPECT_EQ(Number(*preview, "SELECT count(*) FROM pgbench_history"), sample->count);
  EXPECT_TRUE(AmcheckClean(*main));
  EXPECT_TRUE(AmcheckClean(*preview));
}

TEST_F(ShimPostgresTest, PointInTimeRestoreByLsnAndTimestampIsExact) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg().Pgbench({"-i", "-s", "1", "-q"}).ok());
  std::vector<Sample> samples;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(main->pg().Pgbench({"-c", "2", "-T", "2", "-n"}).ok());
    auto s = TakeSample(*main);
    ASSERT_TRUE(s.ok()) << s.status();
    samples.push_back(*s);
  }
  ASSERT_TRUE(main->pg().Pgbench({"-c", "2", "-T", "1", "-n"}).ok());
  ASSERT_TRUE(stack_->WaitForArchive("main", samples.back().lsn, absl::Seconds(60)).ok());
  const Sample& mid = samples[1];
  auto by_lsn = stack_->CreateBranch("pitr-lsn", "main", mid.lsn);
  ASSERT_TRUE(by_lsn.ok()) << by_lsn.status();
  auto by_time = stack_->CreateBranch("pitr-time", "main", std::nullopt, mid.time);
  ASSERT_TRUE(by_time.ok()) << by_time.status();
  auto a = Start("pitr-lsn");
  auto b = Start("pitr-time");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(Number(*a, "SELECT count(*) FROM pgbench_history"), mid.count);
  EXPECT_EQ(Number(*b, "SELECT count(*) FROM pgbench_history"), mid.count);
  EXPECT_LT(mid.count, Number(*main, "SELECT count(*) FROM pgbench_history"));
  EXPECT_TRUE(AmcheckClean(*a));
  EXPECT_TRUE(AmcheckClean(*b));
}

// Issue 11: a new endpoint reads the WAL segments wholly before its start LSN
// through the page cache (ShimFs::OpenHandle). With three segments of WAL since the
// checkpoint, the branch replays every one of them exactly, then writes and
// restarts on its own timeline.
// Issue 11: sort spill files, an index build's spilled sort and temporary tables go
// through the kernel's page cache, written back to the shim's scratch in pieces of
// any size. What spills must come back exactly as it went out.
TEST_F(ShimPostgresTest, SpilledSortsAndTemporaryTablesAreExact) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg()
                  .Sql("CREATE TABLE t AS SELECT g, md5(g::text) AS v "
                       "FROM generate_series(1, 300000) g")
                  .ok());
  // A result that depends on every row's place in the sorted order.
  const std::string ordered =
      "SELECT sum((rn * (hashtext(v) % 1000))::bigint) FROM "
      "(SELECT v, row_number() OVER (ORDER BY v) AS rn FROM t) s";
  const int64_t in_memory = Number(*main, "SET work_mem = '512MB'; " + ordered);
  auto plan = main->pg().Sql("SET work_mem = '64kB'; EXPLAIN (ANALYZE, COSTS OFF) " + ordered);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_NE(plan->find("external merge"), std::string::npos) << *plan;
  EXPECT_EQ(Number(*main, "SET work_mem = '64kB'; " + ordered), in_memory);
  ASSERT_TRUE(
      main->pg()
          .Sql("SET maintenance_work_mem = '1MB'; SET max_parallel_maintenance_workers = 0; "
               "CREATE INDEX t_v ON t (v)")
          .ok());
  // A temporary table larger than temp_buffers lives in its local file.
  EXPECT_EQ(Number(*main,
                   "SET temp_buffers = '800kB'; "
                   "CREATE TEMP TABLE tt AS SELECT * FROM t; UPDATE tt SET g = g + 1; "
                   "SELECT sum(g) - (SELECT sum(g) FROM t) FROM tt"),
            300000);
  EXPECT_TRUE(AmcheckClean(*main));
}

TEST_F(ShimPostgresTest, ABranchReplaysSeveralSegmentsOfWalExactly) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg().Sql("CHECKPOINT").ok());
  ASSERT_TRUE(main->pg()
                  .Sql("CREATE TABLE wide AS SELECT g AS id, repeat(md5(g::text), 16) AS v "
                       "FROM generate_series(1, 80000) g")
                  .ok());
  EXPECT_GT(Number(*main,
                   "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), redo_lsn)::bigint "
                   "FROM pg_control_checkpoint()"),
            int64_t{2} * 16 * 1024 * 1024)
      << "the replay must cross whole segments";
  const int64_t sum = Number(*main, "SELECT sum(hashtext(v)) FROM wide");
  auto lsn = Lsn::Parse(*main->pg().Sql("SELECT pg_current_wal_insert_lsn()"));
  ASSERT_TRUE(lsn.ok()) << lsn.status();
  ASSERT_TRUE(stack_->WaitForArchive("main", *lsn, absl::Seconds(60)).ok());
  ASSERT_TRUE(stack_->CreateBranch("replayed", "main", *lsn).ok());
  auto branch = Start("replayed");
  ASSERT_NE(branch, nullptr);
  EXPECT_EQ(Number(*branch, "SELECT count(*) FROM wide"), 80000);
  EXPECT_EQ(Number(*branch, "SELECT sum(hashtext(v)) FROM wide"), sum);
  ASSERT_TRUE(branch->pg().Sql("INSERT INTO wide VALUES (0, 'after')").ok());
  {
    absl::Status st = branch->Stop();
    ASSERT_TRUE(st.ok()) << st << "\n" << branch->ShimLogTail();
  }
  branch = Start("replayed");
  ASSERT_NE(branch, nullptr);
  EXPECT_EQ(Number(*branch, "SELECT count(*) FROM wide"), 80001);
  EXPECT_TRUE(AmcheckClean(*branch));
}

TEST_F(ShimPostgresTest, CommittedTransactionsSurviveEveryKindOfRestart) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  ASSERT_TRUE(main->pg().Sql("CREATE TABLE acked (id bigint PRIMARY KEY)").ok());
  int64_t next = 0;
  auto commit_some = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(main->pg().Sql(absl::StrFormat("INSERT INTO acked VALUES (%d)", ++next)).ok());
    }
  };
  commit_some(20);
  {
    absl::Status st = main->Stop();
    ASSERT_TRUE(st.ok()) << st << "\n" << main->ShimLogTail();
  }
  main = Start("main");
  ASSERT_NE(main, nullptr);
  EXPECT_EQ(Number(*main, "SELECT count(*) FROM acked"), next);
  // kill -9 of Postgres: crash recovery on the same mount.
  commit_some(20);
  ASSERT_TRUE(main->CrashPostgres().ok());
  {
    absl::Status st = main->Restart();
    ASSERT_TRUE(st.ok()) << st << "\n" << main->ShimLogTail();
  }
  EXPECT_EQ(Number(*main, "SELECT count(*) FROM acked"), next);
  // kill -9 of the shim: the whole compute dies like a machine would.
  commit_some(20);
  ASSERT_TRUE(main->KillShim().ok());
  {
    absl::Status st = main->Restart();
    ASSERT_TRUE(st.ok()) << st << "\n" << main->ShimLogTail();
  }
  EXPECT_EQ(Number(*main, "SELECT count(*) FROM acked"), next);
  EXPECT_EQ(Number(*main, "SELECT max(id) FROM acked"), next);
  EXPECT_TRUE(AmcheckClean(*main));
}

TEST_F(ShimPostgresTest, ASecondEndpointOnAnOwnedTimelineIsRefused) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  auto second = stack_->StartEndpoint("main");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("already being written"), std::string::npos)
      << second.status();
  // The first endpoint is unharmed.
  EXPECT_TRUE(main->pg().Sql("CREATE TABLE still_fine (x int)").ok());
}

TEST_F(ShimPostgresTest, SchemaFeaturesSurviveABranchAndARestart) {
  auto main = Start("main");
  ASSERT_NE(main, nullptr);
  const char* setup[] = {
      "CREATE EXTENSION IF NOT EXISTS pg_trgm",
      "CREATE TABLE docs (id serial PRIMARY KEY, body text, tags text[], pt point, n int)",
      "INSERT INTO docs (body, tags, pt, n) SELECT md5(g::text), ARRAY[g % 7 || 'a', g % 3 || "
      "'b'], "
      "point(g % 100, g / 100), g FROM generate_series(1, 20000) g",
      "CREATE INDEX docs_gin ON docs USING gin (tags)",
      "CREATE INDEX docs_trgm ON docs USING gin (body gin_trgm_ops)",
      "CREATE INDEX docs_gist ON docs USING gist (pt)",
      "CREATE INDEX docs_hash ON docs USING hash (body)",
      "CREATE INDEX docs_brin ON docs USING brin (n)",
      "CREATE SEQUENCE s",
      "SELECT nextval('s') FROM generate_series(1, 41)",
      "CREATE TABLE gone AS SELECT g FROM generate_series(1, 1000) g",
      "DROP TABLE gone",
      "CREATE TABLE trunc AS SELECT g FROM generate_series(1, 5000) g",
      "TRUNCATE trunc",
      "INSERT INTO trunc VALUES (7)",
      "CREATE TABLE shrink AS SELECT g FROM generate_series(1, 50000) g",
      "DELETE FROM shrink WHERE g > 100",
      "VACUUM shrink",
      "CREATE DATABASE other",
  };
  for (const char* sql : setup) ASSERT_TRUE(main->pg().Sql(sql).ok()) << sql;
  ASSERT_TRUE(
      main->pg().Sql("CREATE TABLE t2 (x int); INSERT INTO t2 VALUES (1), (2)", "other").ok());
  // Tablespaces outside PGDATA are not supported: a clear error, nothing broken.
  auto ts_dir = testing::TempDir::Create("cambium-tablespace-");
  ASSERT_TRUE(ts_dir.ok());
  auto ts = main->pg().Sql("CREATE TABLESPACE elsewhere LOCATION '" + ts_dir->path() + "'");
  ASSERT_FALSE(ts.ok());
  EXPECT_NE(ts.status().message().find("symbolic link"), std::string::npos) << ts.status();
  auto in_other = [&](Endpoint& ep) {
    auto out = ep.pg().Sql("SELECT count(*) FROM t2", "other");
    EXPECT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out.value_or(""), "2");
  };
  auto verify = [&](Endpoint& ep) {
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM docs WHERE tags @> ARRAY['3a']"), 2857);
    // x = g % 100 and y = g / 100 both in [0, 9]: g in 1..999 with g % 100 <= 9.
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM docs WHERE pt <@ box '((0,0),(9,9))'"), 99);
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM docs WHERE body = md5('77')"), 1);
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM docs WHERE n BETWEEN 100 AND 199"), 100);
    EXPECT_FALSE(ep.pg().Sql("SELECT * FROM gone").ok());
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM trunc"), 1);
    EXPECT_EQ(Number(ep, "SELECT count(*) FROM shrink"), 100);
    EXPECT_GE(Number(ep, "SELECT last_value FROM s"), 41);
    in_other(ep);
    EXPECT_TRUE(AmcheckClean(ep));
  };
  auto lsn_out = main->pg().Sql("SELECT pg_current_wal_insert_lsn()");
  ASSERT_TRUE(lsn_out.ok());
  const Lsn at = Lsn::Parse(*lsn_out).value();
  ASSERT_TRUE(stack_->WaitForArchive("main", at, absl::Seconds(60)).ok());
  ASSERT_TRUE(stack_->CreateBranch("schema-branch", "main", at).ok());
  auto branch = Start("schema-branch");
  ASSERT_NE(branch, nullptr);
  verify(*branch);
  {
    absl::Status st = main->Stop();
    ASSERT_TRUE(st.ok()) << st << "\n" << main->ShimLogTail();
  }
  main = Start("main");
  ASSERT_NE(main, nullptr);
  verify(*main);
}

}  // namespace
}  // namespace cambium
