#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace packice {
namespace {

std::string Fmt(double v) {
  std::string s;
  AppendMetricDouble(v, &s);
  return s;
}

std::string Fmt(MetricValue v) {
  std::string s;
  v.AppendTo(&s);
  return s;
}

TEST(MetricValueTest, FloatsAreWrittenAsPrometheusParsesThem) {
  EXPECT_EQ(Fmt(0.0), "0");
  EXPECT_EQ(Fmt(-0.0), "0");
  EXPECT_EQ(Fmt(1.0), "1");
  EXPECT_EQ(Fmt(-3.0), "-3");
  EXPECT_EQ(Fmt(1e6), "1000000");  // integral: no exponent
  EXPECT_EQ(Fmt(1099511627776.0), "1099511627776");
  EXPECT_EQ(Fmt(0.25), "0.25");
  EXPECT_EQ(Fmt(0.1), "0.1");
  EXPECT_EQ(Fmt(0.0001), "0.0001");
  EXPECT_EQ(Fmt(5e-05), "0.00005");
  EXPECT_EQ(Fmt(1.5e-6), "1.5e-06");
  EXPECT_EQ(Fmt(1e-300), "1e-300");
  EXPECT_EQ(Fmt(123456789.5), "123456789.5");
  EXPECT_EQ(Fmt(-2.5), "-2.5");
  EXPECT_EQ(Fmt(1e20), "1e+20");
  EXPECT_EQ(Fmt(1.5e300), "1.5e+300");
  EXPECT_EQ(Fmt(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Fmt(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Fmt(std::numeric_limits<double>::quiet_NaN()), "NaN");
  // Shortest round trip: what is written reads back as the same double.
  for (double v : {0.1, 1.0 / 3, 2.0 / 3e10, 6.02214076e23, 1e-300, 12345.678}) {
    EXPECT_EQ(std::stod(Fmt(v)), v) << Fmt(v);
  }
}

TEST(MetricValueTest, IntegersAreExact) {
  EXPECT_EQ(Fmt(MetricValue(0)), "0");
  EXPECT_EQ(Fmt(MetricValue(42)), "42");
  EXPECT_EQ(Fmt(MetricValue(-5)), "-5");
  EXPECT_EQ(Fmt(MetricValue(std::numeric_limits<uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(Fmt(MetricValue(std::numeric_limits<int64_t>::min())), "-9223372036854775808");
  EXPECT_EQ(Fmt(MetricValue(uint64_t{1} << 53 | 1)), "9007199254740993");  // not a double
  EXPECT_EQ(Fmt(MetricValue(0.5)), "0.5");
}

TEST(MetricsRegistryTest, CounterWithoutLabelsRendersFromTheStart) {
  MetricsRegistry r;
  Family<Counter>& c = r.AddCounter("packice_requests_total", "Requests served.");
  EXPECT_EQ(r.Render(),
            "# HELP packice_requests_total Requests served.\n"
            "# TYPE packice_requests_total counter\n"
            "packice_requests_total 0\n");
  c.With({}).Inc();
  c.With({}).Inc(41);
  EXPECT_EQ(c.With({}).value(), 42u);
  EXPECT_EQ(r.Render(),
            "# HELP packice_requests_total Requests served.\n"
            "# TYPE packice_requests_total counter\n"
            "packice_requests_total 42\n");
}

TEST(MetricsRegistryTest, CounterNamesEndInTotal) {
  MetricsRegistry r;
  Family<Counter>& c = r.AddCounter("packice_bytes_sent", "Bytes sent.");
  EXPECT_EQ(c.name(), "packice_bytes_sent_total");
  // Registering either spelling again finds the same family.
  EXPECT_EQ(&r.AddCounter("packice_bytes_sent_total", "Bytes sent."), &c);
  EXPECT_EQ(&r.AddCounter("packice_bytes_sent", "Bytes sent."), &c);
}

TEST(MetricsRegistryTest, LabelledFamiliesRenderChildrenInLabelOrder) {
  MetricsRegistry r;
  Family<Counter>& requests =
      r.AddCounter("http_requests_total", "HTTP requests.", {"route", "method", "status"});
  // Nothing until a child exists: no header for an empty family.
  EXPECT_EQ(r.Render(), "");
  requests.With({"/v1/objects/{key}", "PUT", "201"}).Inc(2);
  requests.With({"/healthz", "GET", "200"}).Inc();
  requests.With({"/v1/objects/{key}", "GET", "200"}).Inc(7);
  EXPECT_EQ(r.Render(),
            "# HELP http_requests_total HTTP requests.\n"
            "# TYPE http_requests_total counter\n"
            "http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1\n"
            "http_requests_total{route=\"/v1/objects/{key}\",method=\"GET\",status=\"200\"} 7\n"
            "http_requests_total{route=\"/v1/objects/{key}\",method=\"PUT\",status=\"201\"} 2\n");
}

TEST(MetricsRegistryTest, Gauges) {
  MetricsRegistry r;
  Family<Gauge>& conns = r.AddGauge("http_connections", "Open connections.");
  Family<Gauge>& temp = r.AddGauge("temperature", "Degrees.", {"where"});
  conns.With({}).Add(3);
  conns.With({}).Add(-1);
  temp.With({"inside"}).Set(21.5);
  temp.With({"outside"}).Set(-4);
  temp.With({"space"}).Set(-std::numeric_limits<double>::infinity());
  EXPECT_EQ(conns.With({}).value(), 2.0);
  EXPECT_EQ(r.Render(),
            "# HELP http_connections Open connections.\n"
            "# TYPE http_connections gauge\n"
            "http_connections 2\n"
            "# HELP temperature Degrees.\n"
            "# TYPE temperature gauge\n"
            "temperature{where=\"inside\"} 21.5\n"
            "temperature{where=\"outside\"} -4\n"
            "temperature{where=\"space\"} -Inf\n");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry r;
  Family<Histogram>& h =
      r.AddHistogram("req_seconds", "Request latency.", {"route"}, {0.5, 1, 2.5});
  Histogram& x = h.With({"/x"});
  x.Observe(0.25);  // le 0.5
  x.Observe(0.5);   // le 0.5: the bound itself is in
  x.Observe(0.75);  // le 1
  x.Observe(3.5);   // +Inf only
  h.With({"/y"});   // a child with no observations
  EXPECT_EQ(x.count(), 4u);
  EXPECT_EQ(x.sum(), 5.0);
  EXPECT_EQ(x.CumulativeCounts(), (std::vector<uint64_t>{2, 3, 3, 4}));
  EXPECT_EQ(r.Render(),
            "# HELP req_seconds Request latency.\n"
            "# TYPE req_seconds histogram\n"
            "req_seconds_bucket{route=\"/x\",le=\"0.5\"} 2\n"
            "req_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "req_seconds_bucket{route=\"/x\",le=\"2.5\"} 3\n"
            "req_seconds_bucket{route=\"/x\",le=\"+Inf\"} 4\n"
            "req_seconds_sum{route=\"/x\"} 5\n"
            "req_seconds_count{route=\"/x\"} 4\n"
            "req_seconds_bucket{route=\"/y\",le=\"0.5\"} 0\n"
            "req_seconds_bucket{route=\"/y\",le=\"1\"} 0\n"
            "req_seconds_bucket{route=\"/y\",le=\"2.5\"} 0\n"
            "req_seconds_bucket{route=\"/y\",le=\"+Inf\"} 0\n"
            "req_seconds_sum{route=\"/y\"} 0\n"
            "req_seconds_count{route=\"/y\"} 0\n");
}

TEST(MetricsRegistryTest, HistogramWithoutLabelsAndAnExplicitInfBound) {
  MetricsRegistry r;
  Family<Histogram>& h = r.AddHistogram("size_bytes", "Sizes.", {},
                                        {1024, 1048576, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h.bounds(), (std::vector<double>{1024, 1048576}));  // +Inf is implicit
  h.With({}).Observe(100);
  h.With({}).Observe(1 << 30);
  h.With({}).Observe(std::numeric_limits<double>::quiet_NaN());  // +Inf bucket; the sum is NaN
  EXPECT_EQ(r.Render(),
            "# HELP size_bytes Sizes.\n"
            "# TYPE size_bytes histogram\n"
            "size_bytes_bucket{le=\"1024\"} 1\n"
            "size_bytes_bucket{le=\"1048576\"} 1\n"
            "size_bytes_bucket{le=\"+Inf\"} 3\n"
            "size_bytes_sum NaN\n"
            "size_bytes_count 3\n");
}

TEST(MetricsRegistryTest, LatencyBucketsRenderAsPlainBounds) {
  const std::vector<double> b = LatencyBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 50e-6);
  EXPECT_EQ(b.back(), 10.0);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  MetricsRegistry r;
  r.AddHistogram("d_seconds", "", {}, LatencyBuckets()).With({}).Observe(0.003);
  const std::string text = r.Render();
  for (const char* line :
       {"d_seconds_bucket{le=\"0.00005\"} 0\n", "d_seconds_bucket{le=\"0.0001\"} 0\n",
        "d_seconds_bucket{le=\"0.0025\"} 0\n", "d_seconds_bucket{le=\"0.005\"} 1\n",
        "d_seconds_bucket{le=\"10\"} 1\n", "d_seconds_bucket{le=\"+Inf\"} 1\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
  }
  // No help: no HELP line.
  EXPECT_EQ(text.rfind("# TYPE d_seconds histogram\n", 0), 0u) << text;
}

TEST(MetricsRegistryTest, HelpAndLabelValuesAreEscaped) {
  MetricsRegistry r;
  r.AddGauge("g", "a back\\slash, a \"quote\" and a\nnew line", {"v"})
      .With({"say \"hi\"\n\\path"})
      .Set(1);
  EXPECT_EQ(r.Render(),
            "# HELP g a back\\\\slash, a \"quote\" and a\\nnew line\n"
            "# TYPE g gauge\n"
            "g{v=\"say \\\"hi\\\"\\n\\\\path\"} 1\n");
}

TEST(MetricsRegistryTest, CollectorsWriteScrapeTimeValuesAndFamiliesStayTogether) {
  MetricsRegistry r;
  r.AddCounter("a_total", "A.").With({}).Inc(3);
  int scrapes = 0;
  r.AddCollector([&scrapes](MetricsWriter& w) {
    ++scrapes;
    w.Family("objects", "Objects, by tier.", MetricType::kGauge);
    w.Sample("objects", {{"tier", "memory"}}, 5);
    w.Family("leases", "Leases.", MetricType::kGauge);
    w.Sample("leases", {}, 2);
  });
  r.AddCollector([](MetricsWriter& w) {
    // A second writer of "objects": its samples join the first block, with no second header.
    w.Family("objects", "Objects, by tier.", MetricType::kGauge);
    w.Sample("objects", {{"tier", "disk"}}, uint64_t{7});
    w.Family("ratio", "A ratio.", MetricType::kUntyped);
    w.Sample("ratio", {}, 0.125);
  });
  const std::string want =
      "# HELP a_total A.\n"
      "# TYPE a_total counter\n"
      "a_total 3\n"
      "# HELP objects Objects, by tier.\n"
      "# TYPE objects gauge\n"
      "objects{tier=\"memory\"} 5\n"
      "objects{tier=\"disk\"} 7\n"
      "# HELP leases Leases.\n"
      "# TYPE leases gauge\n"
      "leases 2\n"
      "# HELP ratio A ratio.\n"
      "# TYPE ratio untyped\n"
      "ratio 0.125\n";
  EXPECT_EQ(r.Render(), want);
  EXPECT_EQ(r.Render(), want);
  EXPECT_EQ(scrapes, 2);
}

TEST(MetricsRegistryTest, WithReturnsStableReferences) {
  MetricsRegistry r;
  Family<Counter>& f = r.AddCounter("c_total", "C.", {"k"});
  Counter* first = &f.With({"first"});
  first->Inc();
  std::vector<Counter*> others;
  for (int i = 0; i < 1000; ++i) others.push_back(&f.With({"k" + std::to_string(i)}));
  EXPECT_EQ(&f.With({"first"}), first);
  EXPECT_EQ(first->value(), 1u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(&f.With({"k" + std::to_string(i)}), others[i]);
  // Another family, and a re-registration, leave it alone too.
  r.AddGauge("g", "G.", {"k"}).With({"first"}).Set(1);
  EXPECT_EQ(&r.AddCounter("c_total", "C.", {"k"}), &f);
  EXPECT_EQ(&f.With({"first"}), first);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAddUpExactly) {
  MetricsRegistry r;
  Family<Counter>& counts = r.AddCounter("ops_total", "Ops.", {"thread_group"});
  Family<Histogram>& lat = r.AddHistogram("op_seconds", "Op latency.", {}, {0.5, 1});
  Family<Gauge>& level = r.AddGauge("level", "Level.");
  constexpr int kThreads = 8;
  constexpr int kOps = 20000;
  Counter& shared = counts.With({"shared"});
  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      Histogram& h = lat.With({});
      for (int i = 0; i < kOps; ++i) {
        shared.Inc();
        counts.With({t % 2 == 0 ? "even" : "odd"}).Inc(2);  // With() racing With()
        h.Observe(i % 2 == 0 ? 0.25 : 0.75);
        level.With({}).Add(1);
      }
    });
  }
  // Renders racing the updates (TSan checks this): every line stays well formed.
  std::thread scraper([&] {
    start.arrive_and_wait();
    for (int i = 0; i < 20; ++i) {
      const std::string text = r.Render();
      EXPECT_EQ(text.back(), '\n');
    }
  });
  for (auto& th : threads) th.join();
  scraper.join();
  EXPECT_EQ(shared.value(), uint64_t{kThreads} * kOps);
  EXPECT_EQ(counts.With({"even"}).value(), uint64_t{kThreads} / 2 * kOps * 2);
  EXPECT_EQ(counts.With({"odd"}).value(), uint64_t{kThreads} / 2 * kOps * 2);
  Histogram& h = lat.With({});
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kOps);
  EXPECT_EQ(h.CumulativeCounts(),
            (std::vector<uint64_t>{kThreads * kOps / 2, kThreads * kOps, kThreads * kOps}));
  EXPECT_EQ(h.sum(), 0.5 * kThreads * kOps);  // quarters add up exactly
  EXPECT_EQ(level.With({}).value(), double{kThreads} * kOps);
}

TEST(MetricsRegistryDeathTest, ProgrammingErrorsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry r;
  Family<Counter>& f = r.AddCounter("c_total", "C.", {"a", "b"});
  EXPECT_DEATH(f.With({"only one"}), "has 2 labels, With\\(\\) got 1");
  EXPECT_DEATH(r.AddGauge("c_total", "C."), "registered twice");
  EXPECT_DEATH(r.AddCounter("c_total", "C.", {"a"}), "registered twice");
  EXPECT_DEATH(r.AddGauge("1bad", "."), "invalid metric name");
  EXPECT_DEATH(r.AddGauge("bad-name", "."), "invalid metric name");
  EXPECT_DEATH(r.AddGauge("g", ".", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(r.AddGauge("g", ".", {"x", "x"}), "twice");
  EXPECT_DEATH(r.AddHistogram("h", ".", {"le"}, {1}), "le");
  EXPECT_DEATH(r.AddHistogram("h", ".", {}, {2, 1}), "strictly increasing");
}

}  // namespace
}  // namespace packice
