#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "metrics/process_metrics.h"

namespace cambium::metrics {
namespace {

bool ValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool ValidLabelName(std::string_view name) {
  if (name.empty() || name.substr(0, 2) == "__") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"}` (with an extra `le` pair for buckets), or "" without labels.
void AppendLabels(const std::vector<std::string>& names, const std::vector<std::string>& values,
                  std::string_view le, std::string* out) {
  if (names.empty() && le.empty()) return;
  out->push_back('{');
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out->push_back(',');
    absl::StrAppend(out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!le.empty()) {
    absl::StrAppend(out, names.empty() ? "" : ",", "le=\"");
    out->append(le);
    out->push_back('"');
  }
  out->push_back('}');
}

void AppendSample(std::string_view name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, std::string_view le,
                  std::string_view value, std::string* out) {
  out->append(name);
  AppendLabels(label_names, values, le, out);
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

}  // namespace

// --- Series ---

void Counter::Add(double amount) {
  if (!(amount > 0)) return;  // also NaN
  if (amount == std::floor(amount) && amount < 9e18) {
    Increment(static_cast<uint64_t>(amount));
  } else {
    fraction_.fetch_add(amount, std::memory_order_relaxed);
  }
}

double Counter::Value() const {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         fraction_.load(std::memory_order_relaxed);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // The first bound >= value ("le" is inclusive); past the last: +Inf. NaN counts
  // in +Inf and poisons the sum, as Prometheus clients do.
  const size_t i = std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.resize(bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> bounds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                             0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                             0.5,     1,      2.5,     5,      10};
  return bounds;
}

// --- Families ---

template <typename T>
std::unique_ptr<T> Family<T>::NewSeries() const {
  return std::make_unique<T>();
}
template <>
std::unique_ptr<Histogram> Family<Histogram>::NewSeries() const {
  return std::make_unique<Histogram>(bounds_);
}

template <typename T>
T& Family<T>::WithLabels(const std::vector<std::string>& label_values) {
  if (label_values.size() != label_count_) {
    MustFailed(absl::InvalidArgumentError(
        absl::StrFormat("metric %s has %d labels, got %d values (%s)", name_, label_count_,
                        label_values.size(), absl::StrJoin(label_values, ","))));
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<T>& series = series_[label_values];
  if (!series) series = NewSeries();
  return *series;
}

template <typename T>
T& Family<T>::WithLabels(std::initializer_list<std::string_view> label_values) {
  std::vector<std::string> values(label_values.begin(), label_values.end());
  return WithLabels(values);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// --- Registry ---

struct Registry::FamilyEntry {
  MetricType type;
  std::string name;
  std::string help;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // histograms
  std::unique_ptr<Family<Counter>> counters;
  std::unique_ptr<Family<Gauge>> gauges;
  std::unique_ptr<Family<Histogram>> histograms;
};

Registry::Registry() = default;
Registry::~Registry() = default;

absl::StatusOr<Registry::FamilyEntry*> Registry::AddFamily(MetricType type, std::string name,
                                                           std::string help,
                                                           std::vector<std::string> label_names,
                                                           std::vector<double> bounds) {
  if (!ValidMetricName(name)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("invalid metric name \"%s\": expected [a-zA-Z_:][a-zA-Z0-9_:]*", name));
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!ValidLabelName(l) || (type == MetricType::kHistogram && l == "le")) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "metric %s: invalid label name \"%s\": expected [a-zA-Z_][a-zA-Z0-9_]*, not starting "
          "with __ (and not le in a histogram)",
          name, l));
    }
    if (std::find(label_names.begin(), label_names.begin() + i, l) != label_names.begin() + i) {
      return absl::InvalidArgumentError(
          absl::StrFormat("metric %s: label \"%s\" appears twice", name, l));
    }
  }
  if (type == MetricType::kHistogram) {
    if (bounds.empty()) {
      return absl::InvalidArgumentError(absl::StrFormat("histogram %s has no buckets", name));
    }
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "histogram %s: bucket bounds must be finite and strictly increasing", name));
      }
    }
  }
  absl::MutexLock lock(&families_mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    FamilyEntry& e = *it->second;
    if (e.type != type || e.help != help || e.label_names != label_names || e.bounds != bounds) {
      return absl::AlreadyExistsError(absl::StrFormat(
          "metric %s is already registered with another type, help, labels or buckets", name));
    }
    return &e;
  }
  auto e = std::make_unique<FamilyEntry>();
  e->type = type;
  e->name = name;
  e->help = std::move(help);
  e->label_names = std::move(label_names);
  e->bounds = std::move(bounds);
  const size_t n = e->label_names.size();
  switch (type) {
    case MetricType::kCounter:
      e->counters.reset(new Family<Counter>(name, n, nullptr));
      if (n == 0) e->counters->Get();
      break;
    case MetricType::kGauge:
      e->gauges.reset(new Family<Gauge>(name, n, nullptr));
      if (n == 0) e->gauges->Get();
      break;
    case MetricType::kHistogram:
      e->histograms.reset(new Family<Histogram>(name, n, &e->bounds));
      if (n == 0) e->histograms->Get();
      break;
  }
  FamilyEntry* raw = e.get();
  families_[name] = std::move(e);
  return raw;
}

absl::StatusOr<Family<Counter>*> Registry::AddCounter(std::string name, std::string help,
                                                      std::vector<std::string> label_names) {
  auto e =
      AddFamily(MetricType::kCounter, std::move(name), std::move(help), std::move(label_names), {});
  if (!e.ok()) return e.status();
  return (*e)->counters.get();
}

absl::StatusOr<Family<Gauge>*> Registry::AddGauge(std::string name, std::string help,
                                                  std::vector<std::string> label_names) {
  auto e =
      AddFamily(MetricType::kGauge, std::move(name), std::move(help), std::move(label_names), {});
  if (!e.ok()) return e.status();
  return (*e)->gauges.get();
}

absl::StatusOr<Family<Histogram>*> Registry::AddHistogram(std::string name, std::string help,
                                                          std::vector<double> bounds,
                                                          std::vector<std::string> label_names) {
  auto e = AddFamily(MetricType::kHistogram, std::move(name), std::move(help),
                     std::move(label_names), std::move(bounds));
  if (!e.ok()) return e.status();
  return (*e)->histograms.get();
}

absl::StatusOr<CallbackHandle> Registry::AddCallback(MetricType type, std::string name,
                                                     std::string help,
                                                     std::vector<std::string> label_names,
                                                     CollectFn fn) {
  if (type == MetricType::kHistogram) {
    return absl::InvalidArgumentError("callbacks report counters or gauges, not histograms");
  }
  auto e = AddFamily(type, std::move(name), std::move(help), std::move(label_names), {});
  if (!e.ok()) return e.status();
  absl::MutexLock lock(&callbacks_mu_);
  const uint64_t id = next_callback_id_++;
  callbacks_[id] = Callback{.family = *e, .fn = std::move(fn)};
  return CallbackHandle(this, id);
}

void Registry::RemoveCallback(uint64_t id) {
  absl::MutexLock lock(&callbacks_mu_);
  callbacks_.erase(id);
}

void Registry::CollectCallbacks(const FamilyEntry& family, std::vector<Sample>* out) const {
  absl::MutexLock lock(&callbacks_mu_);
  for (const auto& [id, cb] : callbacks_) {
    if (cb.family == &family) cb.fn(out);
  }
}

std::string Registry::Exposition() const {
  std::vector<const FamilyEntry*> families;
  {
    absl::MutexLock lock(&families_mu_);
    for (const auto& [name, e] : families_) families.push_back(e.get());
  }
  std::string out;
  for (const FamilyEntry* e : families) {
    std::string samples;
    if (e->type == MetricType::kHistogram) {
      absl::MutexLock lock(&e->histograms->mu_);
      for (const auto& [values, h] : e->histograms->series_) {
        const Histogram::Snapshot s = h->Read();
        for (size_t i = 0; i < e->bounds.size(); ++i) {
          AppendSample(e->name + "_bucket", e->label_names, values, FormatValue(e->bounds[i]),
                       absl::StrCat(s.cumulative[i]), &samples);
        }
        AppendSample(e->name + "_bucket", e->label_names, values, "+Inf",
                     absl::StrCat(s.cumulative.back()), &samples);
        AppendSample(e->name + "_sum", e->label_names, values, "", FormatValue(s.sum), &samples);
        AppendSample(e->name + "_count", e->label_names, values, "",
                     absl::StrCat(s.cumulative.back()), &samples);
      }
    } else {
      // Series and callback samples merged by labels (equal labels add up).
      std::map<std::vector<std::string>, double> merged;
      if (e->counters) {
        absl::MutexLock lock(&e->counters->mu_);
        for (const auto& [values, c] : e->counters->series_) merged[values] += c->Value();
      } else {
        absl::MutexLock lock(&e->gauges->mu_);
        for (const auto& [values, g] : e->gauges->series_) merged[values] += g->Value();
      }
      std::vector<Sample> reported;
      CollectCallbacks(*e, &reported);
      for (Sample& s : reported) {
        if (s.label_values.size() != e->label_names.size()) continue;  // a callback's bug
        merged[std::move(s.label_values)] += s.value;
      }
      for (const auto& [values, v] : merged) {
        AppendSample(e->name, e->label_names, values, "", FormatValue(v), &samples);
      }
    }
    if (samples.empty()) continue;
    absl::StrAppend(&out, "# HELP ", e->name, " ", EscapeHelp(e->help), "\n", "# TYPE ", e->name,
                    " ", TypeName(e->type), "\n", samples);
  }
  return out;
}

// --- Handles ---

CallbackHandle& CallbackHandle::operator=(CallbackHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = other.registry_;
    id_ = other.id_;
    other.registry_ = nullptr;
  }
  return *this;
}

void CallbackHandle::Reset() {
  if (registry_ != nullptr) registry_->RemoveCallback(id_);
  registry_ = nullptr;
}

// --- Helpers ---

Registry& DefaultRegistry() {
  static Registry* const registry = [] {
    auto* r = new Registry();
    const absl::Status added = AddProcessMetrics(*r);
    if (!added.ok()) MustFailed(added);
    return r;
  }();
  return *registry;
}

void MustFailed(const absl::Status& status) {
  std::fprintf(stderr, "metrics: %s\n", status.ToString().c_str());
  std::abort();
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counts, bytes, LSNs) in full, as Go's client writes them: 100000,
  // not the shorter 1e+05.
  if (value == std::floor(value) && std::fabs(value) < 1e21) {
    return absl::StrFormat("%.0f", value);
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, end);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace cambium::metrics
