// Cost of the metric updates the hot paths make (GetPages, WAL appends, FUSE calls)
// and of one scrape. Run: build-dev/bench/metrics_bench. Numbers: docs/metrics.md.
#include <benchmark/benchmark.h>

#include "metrics/registry.h"

namespace cambium::metrics {
namespace {

void BM_CounterIncrement(benchmark::State& state) {
  static Counter& c = Must(DefaultRegistry().AddCounter("bench_counter_total", "x"))->Get();
  for (auto _ : state) c.Increment();
}
BENCHMARK(BM_CounterIncrement)->Threads(1)->Threads(2);

void BM_HistogramObserve(benchmark::State& state) {
  static Histogram& h =
      Must(DefaultRegistry().AddHistogram("bench_seconds", "x", LatencyBuckets()))->Get();
  double v = 0.0001;
  for (auto _ : state) {
    h.Observe(v);
    v = v < 5 ? v * 1.7 : 0.0001;  // walk the buckets
  }
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2);

void BM_ScopedTimer(benchmark::State& state) {
  static Histogram& h =
      Must(DefaultRegistry().AddHistogram("bench_timer_seconds", "x", LatencyBuckets()))->Get();
  for (auto _ : state) ScopedTimer t(h);
}
BENCHMARK(BM_ScopedTimer);

void BM_LabelLookup(benchmark::State& state) {
  static Family<Counter>* f =
      Must(DefaultRegistry().AddCounter("bench_labelled_total", "x", {"tenant", "timeline"}));
  for (auto _ : state) f->WithLabels({"0123456789abcdef", "fedcba9876543210"}).Increment();
}
BENCHMARK(BM_LabelLookup);

void BM_Scrape(benchmark::State& state) {
  size_t bytes = 0;
  for (auto _ : state) bytes = DefaultRegistry().Exposition().size();
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Scrape);

}  // namespace
}  // namespace cambium::metrics

BENCHMARK_MAIN();
