// Metrics: a small Prometheus registry and the text exposition format 0.0.4.
//
// Hand-written: prometheus-cpp is not packaged in Debian 12, and what a node needs is small —
// counters, gauges and histograms in labelled families, scrape-time collectors, and the text
// format (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
//   MetricsRegistry registry;
//   auto& requests = registry.AddCounter("packice_http_requests_total", "HTTP requests.",
//                                        {"route", "method", "status"});
//   requests.With({"/v1/objects/{key}", "GET", "200"}).Inc();   // cache the reference if hot
//   std::string text = registry.Render();                        // GET /metrics
//
// Hot path: Counter::Inc, Gauge::Set/Add and Histogram::Observe on a child already in hand are
// relaxed atomic operations: no allocation, no lock. Family::With takes the family's own lock
// (and allocates the first time a label set is seen). Render takes every family's lock in turn.
//
// Mistakes in names or label arity are programming errors and abort with a message: invalid
// metric or label names, a name registered twice with a different shape, With() given the
// wrong number of label values.
//
// Thread safety: everything here is safe for concurrent use.
#ifndef PACKICE_CORE_METRICS_H_
#define PACKICE_CORE_METRICS_H_

#include <absl/base/thread_annotations.h>

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "core/mutex.h"

namespace packice {

// The Content-Type of what MetricsRegistry::Render returns.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram, kUntyped };

// A sample's value. Integers are written exactly (a counter past 2^53 loses nothing); doubles
// as Go's ParseFloat reads them (integral values without exponent, +Inf, -Inf, NaN).
class MetricValue {
 public:
  MetricValue(double v) : is_double_(true), d_(v) {}  // NOLINT: implicit by design
  template <std::integral I>
  MetricValue(I v)  // NOLINT: implicit by design
      : is_double_(false), negative_(v < 0), u_(AbsOf(v)) {}

  // Appends the value as the text format wants it.
  void AppendTo(std::string* out) const;

 private:
  template <std::integral I>
  static uint64_t AbsOf(I v) {
    if constexpr (std::is_signed_v<I>) {
      return v < 0 ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    } else {
      return static_cast<uint64_t>(v);
    }
  }

  bool is_double_;
  bool negative_ = false;
  double d_ = 0;
  uint64_t u_ = 0;
};

// Appends `v` formatted for the text format: "+Inf", "-Inf", "NaN", integral values as
// integers ("1", "-3", "0"), others with the fewest digits that read back exactly, without an
// exponent from 1e-5 to 1e16 ("0.25", "0.00005"), with one beyond ("1e-300").
void AppendMetricDouble(double v, std::string* out);

struct MetricLabel {
  std::string_view name;
  std::string_view value;
};

// Writes the text format. Samples go to the family most recently named by Family(); a family
// named again (by a later collector, or twice by one) gets its samples appended to its first
// block, so every family appears once, header first, with all its samples together.
//
//   writer.Family("packice_objects", "Sealed objects held.", MetricType::kGauge);
//   writer.Sample("packice_objects", {{"tier", "memory"}}, 12);
//
// `name` of a sample is the family name, or for a histogram the family name with _bucket,
// _sum or _count. Names are not checked here (collectors use constants); label values are
// escaped.
class MetricsWriter {
 public:
  MetricsWriter() = default;
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Starts (or returns to) family `name`: "# HELP name help" and "# TYPE name type", once.
  void Family(std::string_view name, std::string_view help, MetricType type);
  void Sample(std::string_view name, std::initializer_list<MetricLabel> labels, MetricValue value) {
    Sample(name, std::span<const MetricLabel>(labels.begin(), labels.size()), value);
  }
  void Sample(std::string_view name, std::span<const MetricLabel> labels, MetricValue value);

  // The text written so far, families in the order first named.
  std::string Take();

 private:
  struct Block {
    std::string name;
    std::string text;
  };
  static constexpr size_t kNone = ~size_t{0};
  std::vector<Block> blocks_;
  std::map<std::string, size_t, std::less<>> index_;  // family name -> blocks_ index
  size_t current_ = kNone;                            // where samples go
};

// A monotonically increasing count.
class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets by upper bound (le: v <= bound), with their sum.
class Histogram {
 public:
  // `bounds`: strictly increasing and finite; the +Inf bucket is implicit. Must outlive this.
  explicit Histogram(const std::vector<double>* bounds);

  // No allocation, no lock: a binary search and two relaxed atomic adds. NaN counts in +Inf
  // only (and makes the sum NaN, as in other Prometheus clients).
  void Observe(double v);

  const std::vector<double>& bounds() const { return *bounds_; }
  // Cumulative counts, one per bound then +Inf (the last is count()).
  std::vector<uint64_t> CumulativeCounts() const;
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double>* const bounds_;
  // Per bucket (not cumulative): bounds_->size() + 1 entries, the last for +Inf.
  const std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

namespace metrics_internal {

// Orders label-value sets; transparent, so With() looks up without building strings.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

[[noreturn]] void Die(std::string_view what);

// Renders one child of a family.
void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Counter& c);
void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Gauge& g);
void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Histogram& h);

class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  virtual void Render(MetricsWriter& w) = 0;
  virtual MetricType type() const = 0;
  virtual const std::string& name() const = 0;
  virtual const std::vector<std::string>& label_names() const = 0;
  virtual const std::vector<double>& bounds() const = 0;
};

}  // namespace metrics_internal

template <typename M>
class Family final : public metrics_internal::FamilyBase {
 public:
  // Use MetricsRegistry::Add*.
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {
    // A family without labels has its one child from the start, so it renders 0 before use.
    if (labels_.empty()) With({});
  }

  // The child for these label values, in the order of the family's label names; created on
  // first use. The reference stays valid for the family's (the registry's) life.
  // REQUIRES: exactly one value per label name.
  M& With(std::initializer_list<std::string_view> label_values) {
    if (label_values.size() != labels_.size()) {
      metrics_internal::Die("metric " + name_ + " has " + std::to_string(labels_.size()) +
                            " labels, With() got " + std::to_string(label_values.size()));
    }
    const std::span<const std::string_view> key(label_values.begin(), label_values.size());
    MutexLock lock(&mu_);
    auto it = children_.find(key);
    if (it == children_.end()) {
      it = children_
               .emplace(std::vector<std::string>(label_values.begin(), label_values.end()),
                        NewChild())
               .first;
    }
    return *it->second;
  }

  void Render(MetricsWriter& w) override {
    std::vector<MetricLabel> labels(labels_.size());
    for (size_t i = 0; i < labels_.size(); ++i) labels[i].name = labels_[i];
    MutexLock lock(&mu_);
    if (children_.empty()) return;
    w.Family(name_, help_, type());
    for (const auto& [values, child] : children_) {
      for (size_t i = 0; i < values.size(); ++i) labels[i].value = values[i];
      metrics_internal::RenderChild(w, name_, labels, *child);
    }
  }

  MetricType type() const override {
    if constexpr (std::is_same_v<M, Counter>) {
      return MetricType::kCounter;
    } else if constexpr (std::is_same_v<M, Gauge>) {
      return MetricType::kGauge;
    } else {
      return MetricType::kHistogram;
    }
  }
  const std::string& name() const override { return name_; }
  const std::vector<std::string>& label_names() const override { return labels_; }
  const std::vector<double>& bounds() const override { return bounds_; }

 private:
  std::unique_ptr<M> NewChild() {
    if constexpr (std::is_same_v<M, Histogram>) {
      return std::make_unique<Histogram>(&bounds_);
    } else {
      return std::make_unique<M>();
    }
  }

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> labels_;
  const std::vector<double> bounds_;  // histograms only
  Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>, metrics_internal::LabelValuesLess>
      children_ ABSL_GUARDED_BY(mu_);
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each returns the family named `name`, registering it. Registering a name again with the
  // same type, labels (and bounds) returns the existing family; any other clash aborts.
  // Names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and do not start
  // with "__"; a histogram has no "le" label.
  //
  // A counter's name gets "_total" appended unless it ends so already.
  Family<Counter>& AddCounter(std::string name, std::string help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(std::string name, std::string help, std::vector<std::string> labels = {});
  // `bounds`: strictly increasing finite upper bounds (a trailing +Inf is dropped: it is
  // implicit); e.g. LatencyBuckets().
  Family<Histogram>& AddHistogram(std::string name, std::string help,
                                  std::vector<std::string> labels, std::vector<double> bounds);

  // Adds a function called on every Render (outside the registry's locks) to write
  // scrape-time values, such as a peer's object counts. Its families must not share names with
  // registered ones.
  void AddCollector(std::function<void(MetricsWriter&)> collect);

  // Every family with at least one child, in registration order, then every collector's output,
  // in the Prometheus text exposition format 0.0.4 (Content-Type: text/plain; version=0.0.4).
  std::string Render();

 private:
  metrics_internal::FamilyBase* Find(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename M>
  Family<M>& Add(std::string name, std::string help, std::vector<std::string> labels,
                 std::vector<double> bounds);

  Mutex mu_;
  std::vector<std::unique_ptr<metrics_internal::FamilyBase>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<std::function<void(MetricsWriter&)>>> collectors_
      ABSL_GUARDED_BY(mu_);
};

// Bucket bounds for latencies in seconds: 50 us to 10 s, about three per decade
// (0.00005, 0.0001, 0.00025, 0.0005, 0.001, ..., 2.5, 5, 10).
std::vector<double> LatencyBuckets();

}  // namespace packice

#endif  // PACKICE_CORE_METRICS_H_
