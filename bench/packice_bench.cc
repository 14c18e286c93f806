// packice_bench: measures the object store core against a running packiced (bench/run.sh runs it
// side by side with redis-server and prints the comparison table; see docs/benchmarks.md).
//
//   packice_bench small  --url U [--clients 8] [--seconds 5] [--size 1024] [--keys 1000]
//       N threads, one Client each, no pipelining: a put phase (Client::Put, one round trip) then
//       a get phase (Client::Get of keys the put phase wrote). Ops/s and p50/p99 latency.
//   packice_bench fill   --url U --key K --size S
//       Creates, writes (a byte pattern) and seals one object, then exits, so that a later
//       `get` reads it from another process.
//   packice_bench get    --url U --key K [--iterations N] [--seconds S]
//       Get + read every byte (summed, so the reads cannot be optimised away) + Release, in a
//       loop. Bytes/s, and the latency of the Get call alone ("open") and of a whole iteration.
//   packice_bench put    --url U --size 64M [--iterations N] [--warmup W] [--key K]
//       Create + memcpy from a pre-faulted source buffer + Seal, rebinding one key, so after the
//       warm-up the node recycles its pooled segments: the steady state. Bytes/s.
//   packice_bench redis-get --socket PATH --key K [--iterations N] [--seconds S]
//       A baseline: the leanest Redis GET loop (RESP over the Unix socket, the reply received
//       into one pre-faulted buffer and summed like `get` does), to check redis-benchmark.
//   packice_bench echo --socket PATH [--clients 8] [--seconds 3] [--size 1024] [--poll]
//       A baseline: the transport's ceiling for `small`'s client model, against a do-nothing
//       one-thread epoll echo server in this process.
//   packice_bench memcpy --size 64M [--iterations N]
//       The machine's single-thread baselines on two pre-faulted buffers: memcpy bandwidth and
//       the bandwidth of the same summing read `get` does.
//
// Output: one line per result of space-separated key=value pairs (bench=... first), on stdout.
// Latencies are in microseconds, bandwidths in bytes per second.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "packice/client.h"

namespace {

using Clock = std::chrono::steady_clock;
using packice::Status;

std::atomic<uint64_t> g_sink{0};  // where reads that must not be optimised away end up

double Micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }
double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

using packice::bench::ParseSize;
using packice::bench::Quantile;

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

[[noreturn]] void Die(const std::string& what, const packice::Status& s) {
  std::fprintf(stderr, "packice_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

packice::Client MustConnect(const std::string& url) {
  auto c = packice::Connect(url);
  if (!c.ok()) Die("connect " + url, c.status());
  return std::move(c).value();
}

// Reads every byte of `bytes`, eight at a time, and returns their sum (as 64-bit words). The
// loop vectorises, so it runs at the memory's read bandwidth.
uint64_t SumWords(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  const size_t n = bytes.size();
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, sizeof w);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
  }
  for (; i < n; ++i) a += static_cast<uint64_t>(p[i]);
  return a + b + c + d;
}

// A buffer of `size` bytes, every page written (faulted in) before any timing.
std::vector<std::byte> Prefaulted(uint64_t size, int seed) {
  std::vector<std::byte> v(size);
  for (uint64_t i = 0; i < size; ++i) v[i] = static_cast<std::byte>((i * 131 + seed) & 0xff);
  return v;
}

// --- small -----------------------------------------------------------------------------------

struct SmallOptions {
  std::string url;
  int clients = 8;
  double seconds = 5;
  uint64_t size = 1024;
  int keys = 1000;
};

void PrintSmall(const char* op, const SmallOptions& o, std::vector<std::vector<double>>& lat,
                Clock::duration elapsed, uint64_t errors) {
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  const double secs = Seconds(elapsed);
  const double mean = Mean(all);
  const double p50 = Quantile(all, 0.50);
  const double p99 = Quantile(all, 0.99);
  std::printf("bench=small op=%s clients=%d size=%" PRIu64 " ops=%zu errors=%" PRIu64
              " seconds=%.3f ops_per_s=%.0f mean_us=%.1f p50_us=%.1f p99_us=%.1f\n",
              op, o.clients, o.size, all.size(), errors, secs,
              static_cast<double>(all.size()) / secs, mean, p50, p99);
}

int RunSmall(const SmallOptions& o) {
  std::vector<packice::Client> clients;
  for (int i = 0; i < o.clients; ++i) clients.push_back(MustConnect(o.url));
  const std::vector<std::byte> value = Prefaulted(o.size, 7);
  const auto key = [](int client, int i) {
    return "bench/small/" + std::to_string(client) + "/" + std::to_string(i);
  };
  // Every key a get may ask for exists before the clock starts.
  for (int c = 0; c < o.clients; ++c) {
    for (int i = 0; i < o.keys; ++i) {
      if (auto r = clients[c].Put(key(c, i), value); !r.ok()) Die("prefill", r.status());
    }
  }

  std::vector<std::vector<double>> put_lat(o.clients), get_lat(o.clients);
  for (auto& v : put_lat) v.reserve(1 << 20);
  for (auto& v : get_lat) v.reserve(1 << 20);
  std::atomic<uint64_t> put_errors{0}, get_errors{0};
  std::atomic<bool> stop{false};
  std::barrier sync(o.clients + 1);

  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::string> keys;
      for (int i = 0; i < o.keys; ++i) keys.push_back(key(c, i));
      packice::Client& client = clients[c];
      for (int phase = 0; phase < 2; ++phase) {
        auto& lat = phase == 0 ? put_lat[c] : get_lat[c];
        auto& errors = phase == 0 ? put_errors : get_errors;
        sync.arrive_and_wait();  // start together
        uint64_t sum = 0;
        for (size_t i = 0; !stop.load(std::memory_order_relaxed); i = (i + 1) % keys.size()) {
          const auto t0 = Clock::now();
          bool ok;
          if (phase == 0) {
            ok = client.Put(keys[i], value).ok();
          } else {
            auto r = client.Get(keys[i]);
            ok = r.ok() && r->data().size() == o.size;
            if (ok) sum += static_cast<uint64_t>(r->data()[0]);
          }
          lat.push_back(Micros(Clock::now() - t0));
          if (!ok) errors.fetch_add(1, std::memory_order_relaxed);
        }
        g_sink.fetch_add(sum, std::memory_order_relaxed);  // keeps the reads
        sync.arrive_and_wait();                            // stopped
      }
    });
  }
  for (int phase = 0; phase < 2; ++phase) {
    stop = false;
    sync.arrive_and_wait();
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    stop = true;
    sync.arrive_and_wait();
    const auto elapsed = Clock::now() - t0;
    if (phase == 0) {
      PrintSmall("put", o, put_lat, elapsed, put_errors);
    } else {
      PrintSmall("get", o, get_lat, elapsed, get_errors);
    }
    std::fflush(stdout);
  }
  for (auto& t : threads) t.join();
  return put_errors + get_errors == 0 ? 0 : 1;
}

// --- fill / get ------------------------------------------------------------------------------

int RunFill(const std::string& url, const std::string& key, uint64_t size) {
  packice::Client client = MustConnect(url);
  auto w = client.Create(key, size);
  if (!w.ok()) Die("create", w.status());
  std::span<std::byte> bytes = w->data();
  for (uint64_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>((i * 131 + 7) & 0xff);
  auto info = w->Seal();
  if (!info.ok()) Die("seal", info.status());
  std::printf("bench=fill key=%s size=%" PRIu64 "\n", key.c_str(), size);
  return 0;
}

int RunGet(const std::string& url, const std::string& key, int iterations, double max_seconds) {
  packice::Client client = MustConnect(url);
  uint64_t expected = 0;
  {
    auto r = client.Get(key);
    if (!r.ok()) Die("get " + key, r.status());
    expected = SumWords(r->data());  // also the warm-up
  }
  std::vector<double> open_us, read_us, release_us, total_us;
  uint64_t bytes_read = 0, size = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(max_seconds);
  for (int i = 0; i < iterations && Clock::now() < deadline; ++i) {
    const auto t0 = Clock::now();
    auto r = client.Get(key);
    const auto t1 = Clock::now();
    if (!r.ok()) Die("get " + key, r.status());
    const uint64_t sum = SumWords(r->data());
    size = r->data().size();
    const auto t2 = Clock::now();
    if (Status s = r->Release(); !s.ok()) Die("release", s);
    const auto t3 = Clock::now();
    if (sum != expected) Die("get " + key, packice::Internal("content changed under a reader"));
    bytes_read += size;
    open_us.push_back(Micros(t1 - t0));
    read_us.push_back(Micros(t2 - t1));
    release_us.push_back(Micros(t3 - t2));
    total_us.push_back(Micros(t3 - t0));
  }
  const double secs = Seconds(Clock::now() - start);
  const size_t n = open_us.size();
  const double open_mean = Mean(open_us), total_mean = Mean(total_us);
  std::printf("bench=get key=%s size=%" PRIu64
              " iterations=%zu seconds=%.3f bytes_per_s=%.0f "
              "ops_per_s=%.1f open_mean_us=%.1f open_p50_us=%.1f open_p99_us=%.1f read_p50_us=%.1f "
              "release_p50_us=%.1f total_mean_us=%.1f total_p50_us=%.1f checksum=%" PRIu64 "\n",
              key.c_str(), size, n, secs, static_cast<double>(bytes_read) / secs,
              static_cast<double>(n) / secs, open_mean, Quantile(open_us, 0.5),
              Quantile(open_us, 0.99), Quantile(read_us, 0.5), Quantile(release_us, 0.5),
              total_mean, Quantile(total_us, 0.5), expected);
  return 0;
}

// --- redis-get -------------------------------------------------------------------------------

// The leanest Redis GET client we can write, as a stronger baseline than redis-benchmark (whose
// own reply handling dominates for large values): one RESP GET at a time on a Unix socket, the
// bulk reply received straight into one pre-faulted buffer, then summed like `get` does.
int RunRedisGet(const std::string& path, const std::string& key, int iterations,
                double max_seconds) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "packice_bench: socket path too long\n");
    return 2;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "packice_bench: connect %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  const std::string cmd =
      "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
  std::vector<std::byte> buf(4096);
  // One GET: returns the value's span inside `buf` (grown and pre-faulted on first use).
  const auto get = [&]() -> std::span<const std::byte> {
    for (size_t sent = 0; sent < cmd.size();) {
      const ssize_t n = send(fd, cmd.data() + sent, cmd.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        std::fprintf(stderr, "packice_bench: send: %s\n", std::strerror(errno));
        std::exit(1);
      }
      sent += static_cast<size_t>(n);
    }
    size_t have = 0, header = 0, want = 0;
    while (header == 0 || have < want) {
      if (have == buf.size()) buf.resize(buf.size() * 2);
      const ssize_t n = recv(fd, buf.data() + have, buf.size() - have, 0);
      if (n <= 0) {
        std::fprintf(stderr, "packice_bench: recv: %s\n", n == 0 ? "closed" : std::strerror(errno));
        std::exit(1);
      }
      have += static_cast<size_t>(n);
      if (header == 0) {
        const char* p = reinterpret_cast<const char*>(buf.data());
        const void* nl = std::memchr(p, '\n', have);
        if (nl == nullptr) continue;
        if (p[0] != '$' || p[1] == '-') {
          std::fprintf(stderr, "packice_bench: redis GET %s: no value\n", key.c_str());
          std::exit(1);
        }
        header = static_cast<size_t>(static_cast<const char*>(nl) - p) + 1;
        const size_t len = std::strtoull(p + 1, nullptr, 10);
        want = header + len + 2;
        if (buf.size() < want) buf.resize(want);  // value-initialised: faulted in once
      }
    }
    return std::span<const std::byte>(buf.data() + header, want - header - 2);
  };
  const uint64_t expected = SumWords(get());  // also the warm-up
  std::vector<double> total_us;
  uint64_t bytes_read = 0, size = 0;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration<double>(max_seconds);
  for (int i = 0; i < iterations && Clock::now() < deadline; ++i) {
    const auto t0 = Clock::now();
    std::span<const std::byte> value = get();
    const uint64_t sum = SumWords(value);
    total_us.push_back(Micros(Clock::now() - t0));
    if (sum != expected) {
      std::fprintf(stderr, "packice_bench: redis value changed\n");
      return 1;
    }
    size = value.size();
    bytes_read += size;
  }
  close(fd);
  const double secs = Seconds(Clock::now() - start);
  const size_t n = total_us.size();
  std::printf("bench=redis-get key=%s size=%" PRIu64
              " iterations=%zu seconds=%.3f bytes_per_s=%.0f ops_per_s=%.1f total_mean_us=%.1f "
              "total_p50_us=%.1f\n",
              key.c_str(), size, n, secs, static_cast<double>(bytes_read) / secs,
              static_cast<double>(n) / secs, Mean(total_us), Quantile(total_us, 0.5));
  return 0;
}

// --- echo ----------------------------------------------------------------------------------

// The transport's ceiling: the same client model as `small` (N threads, one connection each,
// blocking, one request in flight) against a server that does nothing at all: one epoll thread
// that echoes every `size`-byte request back. With `poll`, clients wait in poll() before recv()
// instead of blocking in recv(), which a Unix stream socket wakes on every write-space event
// too (so a blocked reader is woken once for nothing each time the server consumes a request).
int RunEcho(const std::string& path, int clients, double seconds, uint64_t size, bool use_poll) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "packice_bench: socket path too long\n");
    return 2;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  unlink(path.c_str());
  const int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 128) != 0) {
    std::fprintf(stderr, "packice_bench: listen %s: %s\n", path.c_str(), std::strerror(errno));
    return 1;
  }
  std::atomic<bool> stop{false}, server_stop{false};
  std::thread server([&] {
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{EPOLLIN, {.fd = listener}};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    std::vector<uint64_t> pending(1024, 0);  // bytes received and not yet echoed, by fd
    std::vector<char> buf(64 * 1024);
    const std::vector<char> reply(size, 'r');
    epoll_event events[64];
    while (!server_stop.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(ep, events, 64, 50);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listener) {
          const int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0) continue;
          if (static_cast<size_t>(c) >= pending.size()) pending.resize(c + 1, 0);
          epoll_event cev{EPOLLIN, {.fd = c}};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
          continue;
        }
        const ssize_t got = recv(fd, buf.data(), buf.size(), 0);
        if (got <= 0) {
          if (got < 0 && errno == EAGAIN) continue;
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
          close(fd);
          continue;
        }
        pending[fd] += static_cast<uint64_t>(got);
        for (; pending[fd] >= size; pending[fd] -= size) {
          for (size_t sent = 0; sent < size;) {
            const ssize_t w = send(fd, reply.data() + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0) sent += static_cast<size_t>(w);
            if (w < 0 && errno != EAGAIN) break;
          }
        }
      }
    }
    close(ep);
  });

  std::vector<std::vector<double>> lat(clients);
  std::barrier sync(clients + 1);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "packice_bench: connect: %s\n", std::strerror(errno));
        std::exit(1);
      }
      const std::vector<char> request(size, 'q');
      std::vector<char> in(size);
      lat[c].reserve(1 << 20);
      sync.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        if (send(fd, request.data(), size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) break;
        size_t have = 0;
        while (have < size) {
          if (use_poll) {
            pollfd p{fd, POLLIN, 0};
            poll(&p, 1, 10000);
          }
          const ssize_t n = recv(fd, in.data() + have, size - have, 0);
          if (n <= 0) break;
          have += static_cast<size_t>(n);
        }
        lat[c].push_back(Micros(Clock::now() - t0));
      }
      sync.arrive_and_wait();
      close(fd);
    });
  }
  sync.arrive_and_wait();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  sync.arrive_and_wait();
  const auto elapsed = Clock::now() - t0;
  for (auto& t : threads) t.join();
  server_stop = true;  // only now: a client may have been waiting for a last reply
  server.join();
  close(listener);
  unlink(path.c_str());
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::printf("bench=echo wait=%s clients=%d size=%" PRIu64
              " ops=%zu seconds=%.3f ops_per_s=%.0f p50_us=%.1f p99_us=%.1f\n",
              use_poll ? "poll" : "recv", clients, size, all.size(), Seconds(elapsed),
              static_cast<double>(all.size()) / Seconds(elapsed), Quantile(all, 0.5),
              Quantile(all, 0.99));
  return 0;
}

// --- put -------------------------------------------------------------------------------------

int RunPut(const std::string& url, const std::string& key, uint64_t size, int iterations,
           int warmup) {
  packice::Client client = MustConnect(url);
  const std::vector<std::byte> source = Prefaulted(size, 3);
  std::vector<double> create_us, copy_us, seal_us, total_us;
  Clock::duration timed{0};
  for (int i = 0; i < warmup + iterations; ++i) {
    const auto t0 = Clock::now();
    auto w = client.Create(key, size);
    if (!w.ok()) Die("create", w.status());
    const auto t1 = Clock::now();
    std::memcpy(w->data().data(), source.data(), size);
    const auto t2 = Clock::now();
    auto info = w->Seal();
    if (!info.ok()) Die("seal", info.status());
    const auto t3 = Clock::now();
    if (i < warmup) continue;
    timed += t3 - t0;
    create_us.push_back(Micros(t1 - t0));
    copy_us.push_back(Micros(t2 - t1));
    seal_us.push_back(Micros(t3 - t2));
    total_us.push_back(Micros(t3 - t0));
  }
  const double secs = Seconds(timed);
  const double bytes = static_cast<double>(size) * iterations;
  std::printf("bench=put size=%" PRIu64
              " iterations=%d warmup=%d seconds=%.3f bytes_per_s=%.0f "
              "create_p50_us=%.1f copy_p50_us=%.1f seal_p50_us=%.1f total_p50_us=%.1f "
              "copy_bytes_per_s=%.0f\n",
              size, iterations, warmup, secs, bytes / secs, Quantile(create_us, 0.5),
              Quantile(copy_us, 0.5), Quantile(seal_us, 0.5), Quantile(total_us, 0.5),
              static_cast<double>(size) / (Quantile(copy_us, 0.5) * 1e-6));
  return 0;
}

// --- memcpy ----------------------------------------------------------------------------------

int RunMemcpy(uint64_t size, int iterations) {
  std::vector<std::byte> src = Prefaulted(size, 1);
  std::vector<std::byte> dst = Prefaulted(size, 2);
  std::memcpy(dst.data(), src.data(), size);  // warm-up
  std::vector<double> copy_s, read_s;
  uint64_t sink = 0;
  for (int i = 0; i < iterations; ++i) {
    src[static_cast<size_t>(i) % size] = std::byte{static_cast<unsigned char>(i)};
    const auto t0 = Clock::now();
    std::memcpy(dst.data(), src.data(), size);
    const auto t1 = Clock::now();
    sink += SumWords(dst);
    const auto t2 = Clock::now();
    copy_s.push_back(Seconds(t1 - t0));
    read_s.push_back(Seconds(t2 - t1));
  }
  const double bytes = static_cast<double>(size);
  // The median iteration: a shared VM's neighbours show up as outliers.
  std::printf("bench=memcpy size=%" PRIu64
              " iterations=%d bytes_per_s=%.0f best_bytes_per_s=%.0f\n",
              size, iterations, bytes / Quantile(copy_s, 0.5), bytes / Quantile(copy_s, 0.0));
  std::printf("bench=read size=%" PRIu64 " iterations=%d bytes_per_s=%.0f checksum=%" PRIu64 "\n",
              size, iterations, bytes / Quantile(read_s, 0.5), sink);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"packice_bench: benchmarks of the Packice object store core"};
  app.require_subcommand(1);
  std::string url = packice::DefaultUrl();
  const auto size_option = [](CLI::App* sub, uint64_t* out, const std::string& help) {
    sub->add_option_function<std::string>(
        "--size", [out](const std::string& s) { *out = ParseSize(s); }, help);
  };

  SmallOptions small;
  auto* s = app.add_subcommand("small", "1 KiB-class put then get, N concurrent clients");
  s->add_option("--url", small.url, "node URL (default $PACKICE_URL or the default socket)");
  s->add_option("--clients", small.clients, "concurrent clients, one thread each")
      ->check(CLI::Range(1, 256));
  s->add_option("--seconds", small.seconds, "length of each phase")->check(CLI::Range(0.1, 600.0));
  size_option(s, &small.size, "value size (default 1024)");
  s->add_option("--keys", small.keys, "keys per client")->check(CLI::Range(1, 1000000));

  std::string key = "bench/large";
  uint64_t fill_size = 1 << 20;
  auto* f = app.add_subcommand("fill", "create, write and seal one object");
  f->add_option("--url", url, "node URL");
  f->add_option("--key", key, "object key")->required();
  size_option(f, &fill_size, "object size, e.g. 1M, 64M");

  int get_iterations = 1000;
  double get_seconds = 10;
  auto* g = app.add_subcommand("get", "get + read every byte + release of one sealed object");
  g->add_option("--url", url, "node URL");
  g->add_option("--key", key, "object key")->required();
  g->add_option("--iterations", get_iterations, "iterations")->check(CLI::Range(1, 100000000));
  g->add_option("--seconds", get_seconds, "stop after this long even if iterations remain");

  std::string echo_socket;
  int echo_clients = 8;
  double echo_seconds = 3;
  uint64_t echo_size = 1024;
  bool echo_poll = false;
  auto* e = app.add_subcommand("echo", "baseline: a do-nothing Unix-socket echo server");
  e->add_option("--socket", echo_socket, "Unix socket path to create")->required();
  e->add_option("--clients", echo_clients, "client threads")->check(CLI::Range(1, 256));
  e->add_option("--seconds", echo_seconds, "length")->check(CLI::Range(0.1, 600.0));
  size_option(e, &echo_size, "request and reply size (default 1024)");
  e->add_flag("--poll", echo_poll, "clients wait in poll() instead of blocking in recv()");

  std::string redis_socket;
  auto* rg = app.add_subcommand("redis-get", "baseline: a lean Redis GET loop, reading every byte");
  rg->add_option("--socket", redis_socket, "redis-server's Unix socket")->required();
  rg->add_option("--key", key, "Redis key")->required();
  rg->add_option("--iterations", get_iterations, "iterations")->check(CLI::Range(1, 100000000));
  rg->add_option("--seconds", get_seconds, "stop after this long even if iterations remain");

  uint64_t put_size = 64 << 20;
  int put_iterations = 30, put_warmup = 5;
  std::string put_key = "bench/put";
  auto* p = app.add_subcommand("put", "create + write + seal of large objects, steady state");
  p->add_option("--url", url, "node URL");
  p->add_option("--key", put_key, "key rebound by every put");
  size_option(p, &put_size, "object size (default 64M)");
  p->add_option("--iterations", put_iterations, "timed puts")->check(CLI::Range(1, 100000));
  p->add_option("--warmup", put_warmup, "untimed puts first")->check(CLI::Range(0, 100000));

  uint64_t copy_size = 64 << 20;
  int copy_iterations = 30;
  auto* m = app.add_subcommand("memcpy", "single-thread memcpy and read bandwidth baselines");
  size_option(m, &copy_size, "buffer size (default 64M)");
  m->add_option("--iterations", copy_iterations, "copies")->check(CLI::Range(1, 100000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "packice_bench: %s\n", e.what());
    return 2;
  }
  if (small.url.empty()) small.url = url;
  if (*s) return RunSmall(small);
  if (*f) return RunFill(url, key, fill_size);
  if (*g) return RunGet(url, key, get_iterations, get_seconds);
  if (*e) return RunEcho(echo_socket, echo_clients, echo_seconds, echo_size, echo_poll);
  if (*rg) return RunRedisGet(redis_socket, key, get_iterations, get_seconds);
  if (*p) return RunPut(url, put_key, put_size, put_iterations, put_warmup);
  if (*m) return RunMemcpy(copy_size, copy_iterations);
  return 2;
}
