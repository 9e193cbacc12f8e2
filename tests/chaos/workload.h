// The chaos suite's load on branch main: an acknowledged-commit recorder, pgbench,
// and DDL/maintenance churn, each on its own thread, all following main's current
// connection string (an endpoint restarted after `endpoint stop` may get a new port).
//
// AckRecorder inserts numbered rows into `acks`, one transaction each. A commit is
// acknowledged only when the server answered COMMIT (here: the autocommit INSERT)
// with success; a lost connection leaves that id in doubt (it may or may not be
// there later); a server error means it did not commit. Ids are never reused, so
// "every acknowledged id is present, no id beyond the last attempt exists" is the
// exact statement of "no acknowledged commit lost, nothing invented".
//
// Thread-safety: all public methods are thread-safe.
#ifndef CAMBIUM_TESTS_CHAOS_WORKLOAD_H_
#define CAMBIUM_TESTS_CHAOS_WORKLOAD_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/chaos/pg_client.h"

namespace cambium::chaos {

// Where main's endpoint currently listens. Set by whoever restarts it.
class MainTarget {
 public:
  void Set(const std::string& conninfo);
  std::string Get() const;

 private:
  mutable std::mutex mu_;
  std::string conninfo_;
};

// Creates the tables the workload and checks use (idempotent). Runs pgbench -i.
absl::Status PrepareSchema(const std::string& conninfo, int pgbench_scale);

// A client thread that can be paused (no statement in flight while paused) and
// stopped. Subclasses implement Step(); errors are counted, never fatal.
class LoadThread {
 public:
  explicit LoadThread(const MainTarget* target) : target_(target) {}
  virtual ~LoadThread();
  void Start();
  void Stop();
  // Returns once no step is in flight (bounded: a step stuck on a stalled server is
  // cancelled after `grace`).
  void Pause(absl::Duration grace = absl::Seconds(20));
  void Resume();
  uint64_t steps_ok() const { return ok_.load(); }
  uint64_t steps_failed() const { return failed_.load(); }

 protected:
  // One unit of work on `client` (connected to main). A non-OK status is counted
  // as a failure; UNAVAILABLE drops the connection.
  virtual absl::Status Step(PgClient& client) = 0;
  virtual absl::Duration Pace() { return absl::ZeroDuration(); }

 private:
  void Loop();

  const MainTarget* target_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool paused_ = false;
  bool in_step_ = false;
  PgClient* current_ = nullptr;  // GUARDED_BY(mu_) while in_step_
  std::atomic<uint64_t> ok_{0}, failed_{0};
};

class AckRecorder : public LoadThread {
 public:
  struct Ack {
    int64_t id;
    absl::Time at;
  };
  AckRecorder(const MainTarget* target, int64_t first_id, uint64_t seed)
      : LoadThread(target), next_id_(first_id), rng_(seed) {}
  ~AckRecorder() override { Stop(); }

  size_t acked_count() const;
  std::vector<Ack> Acked() const;
  std::vector<int64_t> InDoubt() const;
  int64_t last_attempted() const { return next_id_.load() - 1; }
  // Waits until at least `n` commits were acknowledged; false after `timeout`.
  bool WaitForAcked(size_t n, absl::Duration timeout) const;
  // REQUIRES: stopped.
  void Reseed(uint64_t seed) { rng_.seed(seed); }

 protected:
  absl::Status Step(PgClient& client) override;

 private:
  std::atomic<int64_t> next_id_;
  std::mt19937_64 rng_;  // used by the recorder thread only
  int64_t attempt_ = 0;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<Ack> acked_;
  std::vector<int64_t> in_doubt_;
};

// DDL and maintenance on the churn tables: CREATE/DROP INDEX, ALTER TABLE ADD/DROP
// COLUMN, VACUUM FULL, CLUSTER, TRUNCATE, CHECKPOINT, DROP TABLE, inserts, deletes.
class Churn : public LoadThread {
 public:
  Churn(const MainTarget* target, uint64_t seed) : LoadThread(target), rng_(seed) {}
  ~Churn() override { Stop(); }
  // REQUIRES: stopped.
  void Reseed(uint64_t seed) { rng_.seed(seed); }

 protected:
  absl::Status Step(PgClient& client) override;
  absl::Duration Pace() override;

 private:
  std::mt19937_64 rng_;
  int dropped_tables_ = 0;
};

// pgbench -n (TPC-B) in short runs, restarted whenever one ends (a crash ends it).
class PgbenchLoad {
 public:
  explicit PgbenchLoad(const MainTarget* target, int clients = 2)
      : target_(target), clients_(clients) {}
  ~PgbenchLoad() { Stop(); }
  void Start();
  void Stop();
  void Pause();
  void Resume();
  uint64_t runs_ok() const { return ok_.load(); }
  uint64_t runs_failed() const { return failed_.load(); }

 private:
  void Loop();
  const MainTarget* target_;
  const int clients_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool paused_ = false;
  pid_t running_pid_ = 0;  // GUARDED_BY(mu_)
  std::atomic<uint64_t> ok_{0}, failed_{0};
};

// All three, paused and resumed together.
class Workload {
 public:
  Workload(const MainTarget* target, int64_t first_ack_id, uint64_t seed);
  void Start();
  void Stop();
  void Pause();
  void Resume();
  AckRecorder& recorder() { return recorder_; }
  // Every random choice of the load from `seed` (the round's). REQUIRES: stopped.
  void Reseed(uint64_t seed);
  std::string Summary() const;

 private:
  AckRecorder recorder_;
  Churn churn_;
  PgbenchLoad pgbench_;
};

}  // namespace cambium::chaos

#endif  // CAMBIUM_TESTS_CHAOS_WORKLOAD_H_
