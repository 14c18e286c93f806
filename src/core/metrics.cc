// A hand-written Prometheus registry: prometheus-cpp is not packaged in Debian 12 (see
// metrics.h).
#include "core/metrics.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace packice {
namespace metrics_internal {

void Die(std::string_view what) {
  std::fprintf(stderr, "packice metrics: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

}  // namespace metrics_internal

namespace {

using metrics_internal::Die;

// "# HELP" text: backslash and line feed are escaped.
void AppendEscapedHelp(std::string_view s, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// A label value: backslash, double quote and line feed are escaped.
void AppendEscapedLabelValue(std::string_view s, std::string* out) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"') {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool IsMetricName(std::string_view s) {
  if (s.empty() || IsDigit(s[0])) return false;
  for (char c : s) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_' && c != ':') return false;
  }
  return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus).
bool IsLabelName(std::string_view s) {
  if (s.empty() || IsDigit(s[0]) || s.starts_with("__")) return false;
  for (char c : s) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') return false;
  }
  return true;
}

}  // namespace

// --- values --------------------------------------------------------------------------------

void AppendMetricDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char buf[64];
  const double magnitude = std::fabs(v);
  // Integral values below 2^63 print as integers ("1000000", not "1e+06"); -0 prints as "0".
  if (v == std::trunc(v) && magnitude < 9.2e18) {
    auto r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
    out->append(buf, r.ptr);
    return;
  }
  // Otherwise the shortest digits that read back exactly: in plain notation for ordinary
  // magnitudes ("0.25", "0.00005", "123456789.5"), else with an exponent ("1e-300", "1e+20").
  // (Where the cut falls only decides looks: Go's ParseFloat reads both.)
  std::to_chars_result r{buf, std::errc::value_too_large};
  if (magnitude >= 1e-5 && magnitude < 1e16) {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  }
  if (r.ec != std::errc()) r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void MetricValue::AppendTo(std::string* out) const {
  if (is_double_) {
    AppendMetricDouble(d_, out);
    return;
  }
  if (negative_ && u_ != 0) out->push_back('-');
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), u_);
  out->append(buf, r.ptr);
}

// --- MetricsWriter -------------------------------------------------------------------------

void MetricsWriter::Family(std::string_view name, std::string_view help, MetricType type) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    current_ = it->second;
    return;
  }
  Block block;
  block.name = std::string(name);
  if (!help.empty()) {
    block.text.append("# HELP ").append(name).push_back(' ');
    AppendEscapedHelp(help, &block.text);
    block.text.push_back('\n');
  }
  block.text.append("# TYPE ").append(name).push_back(' ');
  block.text.append(TypeName(type)).push_back('\n');
  current_ = blocks_.size();
  index_.emplace(block.name, current_);
  blocks_.push_back(std::move(block));
}

void MetricsWriter::Sample(std::string_view name, std::span<const MetricLabel> labels,
                           MetricValue value) {
  if (current_ == kNone) {
    // No family named yet: an untyped one, without a header, under the sample's name.
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(std::string(name), blocks_.size()).first;
      blocks_.push_back(Block{std::string(name), {}});
    }
    current_ = it->second;
  }
  std::string& out = blocks_[current_].text;
  out.append(name);
  if (!labels.empty()) {
    out.push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out.push_back(',');
      out.append(labels[i].name).append("=\"");
      AppendEscapedLabelValue(labels[i].value, &out);
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
  value.AppendTo(&out);
  out.push_back('\n');
}

std::string MetricsWriter::Take() {
  size_t total = 0;
  for (const Block& b : blocks_) total += b.text.size();
  std::string out;
  out.reserve(total);
  for (const Block& b : blocks_) out.append(b.text);
  blocks_.clear();
  index_.clear();
  current_ = kNone;
  return out;
}

// --- Histogram -----------------------------------------------------------------------------

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds->size() + 1)) {}

void Histogram::Observe(double v) {
  const std::vector<double>& b = *bounds_;
  // The first bound >= v: le is "less than or equal". NaN compares false everywhere: +Inf.
  const size_t i = std::isnan(v)
                       ? b.size()
                       : static_cast<size_t>(std::lower_bound(b.begin(), b.end(), v) - b.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> counts(bounds_->size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    counts[i] = total;
  }
  return counts;
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
  }
  return total;
}

// --- families ------------------------------------------------------------------------------

namespace metrics_internal {

void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Counter& c) {
  w.Sample(name, labels, c.value());
}

void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Gauge& g) {
  w.Sample(name, labels, g.value());
}

void RenderChild(MetricsWriter& w, const std::string& name, std::span<const MetricLabel> labels,
                 const Histogram& h) {
  // One snapshot of the buckets: _count is the +Inf bucket, as Prometheus expects, even while
  // observations land. (_sum is read separately and may be a little ahead or behind.)
  const std::vector<uint64_t> counts = h.CumulativeCounts();
  const std::vector<double>& bounds = h.bounds();
  std::vector<MetricLabel> with_le(labels.begin(), labels.end());
  with_le.push_back(MetricLabel{"le", ""});
  const std::string bucket = name + "_bucket";
  std::string le;
  for (size_t i = 0; i < counts.size(); ++i) {
    le.clear();
    if (i < bounds.size()) {
      AppendMetricDouble(bounds[i], &le);
    } else {
      le = "+Inf";
    }
    with_le.back().value = le;
    w.Sample(bucket, with_le, counts[i]);
  }
  w.Sample(name + "_sum", labels, h.sum());
  w.Sample(name + "_count", labels, counts.back());
}

}  // namespace metrics_internal

// --- MetricsRegistry -----------------------------------------------------------------------

metrics_internal::FamilyBase* MetricsRegistry::Find(const std::string& name) {
  for (const auto& f : families_) {
    if (f->name() == name) return f.get();
  }
  return nullptr;
}

template <typename M>
Family<M>& MetricsRegistry::Add(std::string name, std::string help, std::vector<std::string> labels,
                                std::vector<double> bounds) {
  if (!IsMetricName(name)) Die("invalid metric name '" + name + "'");
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!IsLabelName(labels[i])) Die("metric " + name + ": invalid label name '" + labels[i] + "'");
    for (size_t j = 0; j < i; ++j) {
      if (labels[i] == labels[j]) Die("metric " + name + ": label '" + labels[i] + "' twice");
    }
  }
  MutexLock lock(&mu_);
  if (metrics_internal::FamilyBase* existing = Find(name)) {
    auto* family = dynamic_cast<Family<M>*>(existing);
    if (family == nullptr || family->label_names() != labels || family->bounds() != bounds) {
      Die("metric " + name + " registered twice with different types, labels or buckets");
    }
    return *family;
  }
  auto family = std::make_unique<Family<M>>(std::move(name), std::move(help), std::move(labels),
                                            std::move(bounds));
  Family<M>& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Family<Counter>& MetricsRegistry::AddCounter(std::string name, std::string help,
                                             std::vector<std::string> labels) {
  if (!name.ends_with("_total")) name += "_total";
  return Add<Counter>(std::move(name), std::move(help), std::move(labels), {});
}

Family<Gauge>& MetricsRegistry::AddGauge(std::string name, std::string help,
                                         std::vector<std::string> labels) {
  return Add<Gauge>(std::move(name), std::move(help), std::move(labels), {});
}

Family<Histogram>& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                                 std::vector<std::string> labels,
                                                 std::vector<double> bounds) {
  for (const std::string& label : labels) {
    if (label == "le") Die("histogram " + name + " may not have a label named le");
  }
  if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) {
    bounds.pop_back();  // +Inf is always the last bucket
  }
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
      Die("histogram " + name + ": bucket bounds must be finite and strictly increasing");
    }
  }
  return Add<Histogram>(std::move(name), std::move(help), std::move(labels), std::move(bounds));
}

void MetricsRegistry::AddCollector(std::function<void(MetricsWriter&)> collect) {
  auto fn = std::make_shared<std::function<void(MetricsWriter&)>>(std::move(collect));
  MutexLock lock(&mu_);
  collectors_.push_back(std::move(fn));
}

std::string MetricsRegistry::Render() {
  // Families are never removed, so their pointers outlive the lock; collectors run unlocked
  // (one may register metrics, or take its own locks).
  std::vector<metrics_internal::FamilyBase*> families;
  std::vector<std::shared_ptr<std::function<void(MetricsWriter&)>>> collectors;
  {
    MutexLock lock(&mu_);
    families.reserve(families_.size());
    for (const auto& f : families_) families.push_back(f.get());
    collectors = collectors_;
  }
  MetricsWriter writer;
  for (metrics_internal::FamilyBase* f : families) f->Render(writer);
  for (const auto& collect : collectors) (*collect)(writer);
  return writer.Take();
}

std::vector<double> LatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
}

}  // namespace packice
