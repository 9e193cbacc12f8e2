#include "tests/chaos/workload.h"

#include <signal.h>

#include "absl/strings/str_format.h"
#include "common/subprocess.h"
#include "tests/harness/postgres_process.h"

namespace cambium::chaos {
namespace {

constexpr absl::Duration kConnectTimeout = absl::Seconds(5);

// Churn: how many extra columns ALTER TABLE may add before it drops one.
constexpr int kMaxChurnColumns = 3;

}  // namespace

void MainTarget::Set(const std::string& conninfo) {
  std::lock_guard<std::mutex> lock(mu_);
  conninfo_ = conninfo;
}

std::string MainTarget::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return conninfo_;
}

absl::Status PrepareSchema(const std::string& conninfo, int pgbench_scale) {
  auto client = PgClient::Connect(conninfo, absl::Seconds(30));
  if (!client.ok()) return client.status();
  absl::Status s = (*client)->Exec(
      "CREATE EXTENSION IF NOT EXISTS amcheck;"
      "CREATE TABLE IF NOT EXISTS acks (id bigint PRIMARY KEY, pad text);"
      "CREATE TABLE IF NOT EXISTS markers (id bigint PRIMARY KEY);"
      "CREATE TABLE IF NOT EXISTS churn (id serial PRIMARY KEY, k int, v text);"
      "INSERT INTO churn (k, v) SELECT g % 97, md5(g::text) FROM generate_series(1, 2000) g");
  if (!s.ok()) return s;
  auto init = CheckCommand({.argv = {testing::PostgresBin("pgbench"), "-i", "-q", "-s",
                                     std::to_string(pgbench_scale), conninfo}},
                           absl::Minutes(10));
  return init.status();
}

// ---- LoadThread ----

LoadThread::~LoadThread() { Stop(); }

void LoadThread::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void LoadThread::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (in_step_ && current_ != nullptr) current_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LoadThread::Pause(absl::Duration grace) {
  std::unique_lock<std::mutex> lock(mu_);
  paused_ = true;
  for (int attempt = 0; attempt < 2 && in_step_; ++attempt) {
    cv_.wait_for(lock, absl::ToChronoSeconds(grace), [this] { return !in_step_; });
    if (in_step_ && current_ != nullptr) current_->Cancel();
  }
}

void LoadThread::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void LoadThread::Loop() {
  std::unique_ptr<PgClient> client;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !paused_; });
      if (stop_) return;
    }
    if (client == nullptr || !client->healthy()) {
      client.reset();
      auto c = PgClient::Connect(target_->Get(), kConnectTimeout);
      if (!c.ok()) {
        absl::SleepFor(absl::Milliseconds(300));
        continue;
      }
      client = *std::move(c);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || paused_) continue;
      in_step_ = true;
      current_ = client.get();
    }
    absl::Status s = Step(*client);
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_step_ = false;
      current_ = nullptr;
    }
    cv_.notify_all();
    (s.ok() ? ok_ : failed_).fetch_add(1);
    if (absl::IsUnavailable(s)) client.reset();
    const absl::Duration pace = Pace();
    if (pace > absl::ZeroDuration()) absl::SleepFor(pace);
  }
}

// ---- AckRecorder ----

absl::Status AckRecorder::Step(PgClient& client) {
  const int64_t id = next_id_.fetch_add(1);
  const int pad = std::uniform_int_distribution<int>(50, 1500)(rng_);
  absl::Status s =
      client.Exec(absl::StrFormat("INSERT INTO acks VALUES (%d, repeat('x', %d))", id, pad));
  std::lock_guard<std::mutex> lock(mu_);
  if (s.ok()) {
    acked_.push_back({id, absl::Now()});
    cv_.notify_all();
  } else if (absl::IsUnavailable(s)) {
    in_doubt_.push_back(id);  // the COMMIT may or may not have happened
  }
  return s;
}

size_t AckRecorder::acked_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_.size();
}

std::vector<AckRecorder::Ack> AckRecorder::Acked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

std::vector<int64_t> AckRecorder::InDoubt() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_doubt_;
}

bool AckRecorder::WaitForAcked(size_t n, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoSeconds(timeout), [&] { return acked_.size() >= n; });
}

// ---- Churn ----

absl::Duration Churn::Pace() {
  return absl::Milliseconds(std::uniform_int_distribution<int>(100, 400)(rng_));
}

absl::Status Churn::Step(PgClient& client) {
  const int op = std::uniform_int_distribution<int>(0, 11)(rng_);
  const int col = std::uniform_int_distribution<int>(1, kMaxChurnColumns)(rng_);
  switch (op) {
    case 0:
      return client.Exec("CREATE INDEX IF NOT EXISTS churn_k ON churn (k)");
    case 1:
      return client.Exec("DROP INDEX IF EXISTS churn_k");
    case 2:
      return client.Exec(absl::StrFormat(
          "ALTER TABLE churn ADD COLUMN IF NOT EXISTS c%d int DEFAULT %d", col, col));
    case 3:
      return client.Exec(absl::StrFormat("ALTER TABLE churn DROP COLUMN IF EXISTS c%d", col));
    case 4:
      return client.Exec("VACUUM FULL churn");
    case 5:
      return client.Exec(
          "BEGIN; TRUNCATE churn; INSERT INTO churn (k, v) SELECT g % 97, md5(g::text) "
          "FROM generate_series(1, 1000) g; COMMIT");
    case 6:
      return client.Exec("CHECKPOINT");
    case 7: {
      // A whole table created, filled and dropped: its files must be reclaimable.
      const std::string t = absl::StrFormat("churn_drop_%d", dropped_tables_++ % 4);
      return client.Exec(absl::StrFormat(
          "DROP TABLE IF EXISTS %s; CREATE TABLE %s AS SELECT g AS id, repeat('d', 200) AS pad "
          "FROM generate_series(1, 2000) g; DROP TABLE %s",
          t, t, t));
    }
    case 8:
      return client.Exec(
          "CREATE INDEX IF NOT EXISTS churn_k ON churn (k); CLUSTER churn USING "
          "churn_k");
    case 9:
      return client.Exec("DELETE FROM churn WHERE id % 7 = 0");
    case 10:
      return client.Exec("VACUUM pgbench_accounts");
    default:
      return client.Exec(
          "INSERT INTO churn (k, v) SELECT g % 97, md5(random()::text) FROM "
          "generate_series(1, 300) g");
  }
}

// ---- PgbenchLoad ----

void PgbenchLoad::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void PgbenchLoad::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    if (running_pid_ > 0) kill(-running_pid_, SIGKILL);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PgbenchLoad::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  paused_ = true;
  if (running_pid_ > 0) kill(-running_pid_, SIGKILL);
}

void PgbenchLoad::Resume() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void PgbenchLoad::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !paused_; });
      if (stop_) return;
    }
    SubprocessOptions o;
    o.argv = {testing::PostgresBin("pgbench"),
              "-n",
              "-c",
              std::to_string(clients_),
              "-j",
              std::to_string(clients_),
              "-T",
              "4",
              target_->Get()};
    o.stdout_file = "/dev/null";
    o.stderr_file = "/dev/null";
    o.die_with_parent = true;
    auto p = Subprocess::Start(o);
    if (!p.ok()) {
      absl::SleepFor(absl::Milliseconds(500));
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_pid_ = (*p)->pid();
      if (stop_ || paused_) kill(-running_pid_, SIGKILL);
    }
    auto code = (*p)->Wait(absl::Minutes(2));
    if (!code.ok()) (void)(*p)->Stop(SIGKILL, absl::Seconds(5));
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_pid_ = 0;
    }
    (code.ok() && *code == 0 ? ok_ : failed_).fetch_add(1);
    if (!code.ok() || *code != 0) absl::SleepFor(absl::Milliseconds(300));
  }
}

// ---- Workload ----

Workload::Workload(const MainTarget* target, int64_t first_ack_id, uint64_t seed)
    : recorder_(target, first_ack_id, seed ^ 0x5eed0001),
      churn_(target, seed ^ 0x5eed0002),
      pgbench_(target) {}

void Workload::Reseed(uint64_t seed) {
  recorder_.Reseed(seed ^ 0x5eed0001);
  churn_.Reseed(seed ^ 0x5eed0002);
}

void Workload::Start() {
  recorder_.Start();
  churn_.Start();
  pgbench_.Start();
}

void Workload::Stop() {
  pgbench_.Stop();
  churn_.Stop();
  recorder_.Stop();
}

void Workload::Pause() {
  pgbench_.Pause();
  churn_.Pause();
  recorder_.Pause();
}

void Workload::Resume() {
  recorder_.Resume();
  churn_.Resume();
  pgbench_.Resume();
}

std::string Workload::Summary() const {
  return absl::StrFormat(
      "acked=%d in_doubt=%d recorder_errors=%d churn_ok=%d churn_failed=%d pgbench_runs_ok=%d "
      "pgbench_runs_failed=%d",
      recorder_.acked_count(), recorder_.InDoubt().size(), recorder_.steps_failed(),
      churn_.steps_ok(), churn_.steps_failed(), pgbench_.runs_ok(), pgbench_.runs_failed());
}

}  // namespace cambium::chaos
