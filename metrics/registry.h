// Metrics: counters, gauges and histograms that the daemons update on their hot
// paths, and their exposition in the Prometheus text format 0.0.4 (served by
// HttpServer, metrics/http_server.h; every metric is listed in docs/metrics.md).
//
// A Registry holds metric families. A family has a name, a help text and fixed label
// names; it has one series (a Counter, Gauge or Histogram) per tuple of label values,
// created on first use and kept for the registry's lifetime, so a caller looks its
// series up once and keeps the reference. Updating a series is one or two relaxed
// atomic operations (a histogram: a binary search over its bounds, one bucket
// increment and one add to its sum), so GetPages and WAL appends can afford it per
// request.
//
// Values only known at scrape time (RocksDB properties, per-timeline LSNs, queue
// lengths) come from callbacks (AddCallback) that the registry calls while it renders
// the exposition. A callback stays registered while its CallbackHandle lives;
// destroying the handle waits for a scrape that is running it, so the objects a
// callback reads may be destroyed right after. Samples with the same labels from
// several callbacks of one family are added up: several instances of a component in
// one process (tests) report their total.
//
// Names are checked at registration: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*,
// label names [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" (and "le" is reserved
// in histograms). Registering a name again with the same type, help, labels (and
// bounds) returns the existing family; anything else is ALREADY_EXISTS. Label
// values may be any string; never put secrets, connection strings or unbounded
// values in them (docs/security.md, docs/metrics.md).
//
// Thread-safety: everything is thread-safe. Callbacks run on the scraping thread
// under the registry's collection lock: a callback must not register or remove
// callbacks, and a CallbackHandle must not be destroyed while its owner holds a lock
// that the callback takes.
#ifndef CAMBIUM_METRICS_REGISTRY_H_
#define CAMBIUM_METRICS_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cambium::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonic count. Increment is one relaxed atomic add; Add (fractional amounts,
// such as seconds) a compare-and-swap loop.
class Counter {
 public:
  void Increment(uint64_t n = 1) { whole_.fetch_add(n, std::memory_order_relaxed); }
  // Ignores negative and NaN amounts: a counter never goes down.
  void Add(double amount);
  double Value() const;

 private:
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in fixed buckets (upper bounds, inclusive, plus +Inf), with
// their sum. Buckets are counted individually and made cumulative at scrape time.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* const bounds_;  // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Times a scope into a histogram, in seconds, on a monotonic clock.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& histogram)
      : histogram_(histogram), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    histogram_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  Histogram& histogram_;
  const std::chrono::steady_clock::time_point start_;
};

// Bucket bounds for latencies in seconds: 50 us, 100 us, 250 us, 500 us, 1 ms, ... 10 s
// (1-2.5-5 steps).
const std::vector<double>& LatencyBuckets();

class Registry;

// The series of one family, by label values.
template <typename T>
class Family {
 public:
  // The series for `label_values` (in label-name order), created on first use. The
  // reference stays valid for the registry's lifetime. Takes a lock: look series
  // up once, not per update. A wrong number of values is a programming error: it
  // aborts, naming the family.
  T& WithLabels(std::initializer_list<std::string_view> label_values);
  T& WithLabels(const std::vector<std::string>& label_values);
  // The series of a family without labels (created at registration).
  T& Get() { return WithLabels(std::vector<std::string>()); }

  const std::string& name() const { return name_; }

 private:
  friend class Registry;
  Family(std::string name, size_t label_count, const std::vector<double>* bounds)
      : name_(std::move(name)), label_count_(label_count), bounds_(bounds) {}
  std::unique_ptr<T> NewSeries() const;

  const std::string name_;
  const size_t label_count_;
  const std::vector<double>* const bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
};

// One sample a callback reports: label values (in label-name order) and the value.
struct Sample {
  std::vector<std::string> label_values;
  double value = 0;
};
using CollectFn = std::function<void(std::vector<Sample>* out)>;

// Keeps a callback registered; destroying or resetting it unregisters the callback,
// waiting for a scrape that is running it.
class CallbackHandle {
 public:
  CallbackHandle() = default;
  CallbackHandle(CallbackHandle&& other) noexcept { *this = std::move(other); }
  CallbackHandle& operator=(CallbackHandle&& other) noexcept;
  ~CallbackHandle() { Reset(); }
  // Unregisters the callback now.
  void Reset();
  // Gives the handle up: the callback stays registered for the registry's lifetime.
  void Release() { registry_ = nullptr; }

 private:
  friend class Registry;
  CallbackHandle(Registry* registry, uint64_t id) : registry_(registry), id_(id) {}
  Registry* registry_ = nullptr;
  uint64_t id_ = 0;
};

class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  absl::StatusOr<Family<Counter>*> AddCounter(std::string name, std::string help,
                                              std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(std::string name, std::string help,
                                          std::vector<std::string> label_names = {});
  // `bounds`: finite, strictly increasing, at least one; +Inf is implicit.
  absl::StatusOr<Family<Histogram>*> AddHistogram(std::string name, std::string help,
                                                  std::vector<double> bounds,
                                                  std::vector<std::string> label_names = {});
  // A counter or gauge family whose samples `fn` reports at every scrape.
  absl::StatusOr<CallbackHandle> AddCallback(MetricType type, std::string name, std::string help,
                                             std::vector<std::string> label_names, CollectFn fn);

  // Every family with at least one sample, by name, in the Prometheus text format
  // 0.0.4 (HELP and TYPE lines, then the samples ordered by label values).
  std::string Exposition() const;

 private:
  friend class CallbackHandle;
  struct FamilyEntry;

  absl::StatusOr<FamilyEntry*> AddFamily(MetricType type, std::string name, std::string help,
                                         std::vector<std::string> label_names,
                                         std::vector<double> bounds);
  void RemoveCallback(uint64_t id);
  void CollectCallbacks(const FamilyEntry& family, std::vector<Sample>* out) const;

  mutable absl::Mutex families_mu_;
  std::map<std::string, std::unique_ptr<FamilyEntry>> families_ ABSL_GUARDED_BY(families_mu_);

  // Held while callbacks run (a scrape) and while one is added or removed; never
  // together with families_mu_, so a callback may take locks under which other
  // threads register families.
  mutable absl::Mutex callbacks_mu_;
  struct Callback {
    const FamilyEntry* family;
    CollectFn fn;
  };
  std::map<uint64_t, Callback> callbacks_ ABSL_GUARDED_BY(callbacks_mu_);
  uint64_t next_callback_id_ ABSL_GUARDED_BY(callbacks_mu_) = 1;
};

// The process's registry: every daemon's metrics, the standard process metrics
// (process_cpu_seconds_total, process_resident_memory_bytes, ...; read from
// /proc/self at scrape time) and cambium_build_info{version="..."}. Never destroyed.
Registry& DefaultRegistry();

// For families whose names and labels are fixed in the code: a failed registration
// is a programming error (caught by any test that reaches the code), so this aborts
// with the status instead of returning it.
[[noreturn]] void MustFailed(const absl::Status& status);
template <typename T>
T Must(absl::StatusOr<T> result) {
  if (!result.ok()) MustFailed(result.status());
  return *std::move(result);
}

// Exposition helpers (exposed for tests): a number as the text format writes it
// (shortest form that reads back exactly; +Inf, -Inf, NaN), and label value escaping
// (backslash, double quote, newline).
std::string FormatValue(double value);
std::string EscapeLabelValue(std::string_view value);

}  // namespace cambium::metrics

#endif  // CAMBIUM_METRICS_REGISTRY_H_
