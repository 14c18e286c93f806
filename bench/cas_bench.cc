// Blob uploads and downloads against one packiced, over REAPI gRPC (the OpenGrpcCas client:
// ByteStream, and batches for what fits) and over HTTP (PUT and GET /v1/cas with libcurl), and a
// GET of a static file from a baseline HTTP server (nginx) with the same libcurl code; plus
// FindMissingBlobs of 10,000 digests. bench/cas_run.sh starts the servers and prints the table.
//
//   cas_bench GRPC_TARGET HTTP_URL BASELINE_URL SIZE_MIB...
//     BASELINE_URL/blob-<SIZE_MIB> must be a file of SIZE_MIB MiB.
//
// Prints one tab-separated line per measurement: op, path, bytes, best seconds (of RUNS, env,
// default 3). Every upload is of a blob the node does not hold yet (its first 8 bytes differ),
// hashed (BLAKE3) before the clock starts; downloads land in fresh memory, as a client that
// keeps the bytes needs, and are not hashed by the client (HTTP's are not either).
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "packice/cas.h"
#include "transport/grpc/reapi/reapi_cas.h"

namespace {

using Clock = std::chrono::steady_clock;
using packice::BlobRange;
using packice::Cas;
using packice::Digest;
using packice::DigestAlgorithm;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Print(const char* op, const char* path, uint64_t bytes, double best) {
  std::printf("%s\t%s\t%llu\t%.6f\n", op, path, static_cast<unsigned long long>(bytes), best);
  std::fflush(stdout);
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "cas_bench: %s\n", what.c_str());
  std::exit(1);
}

// --- libcurl ---------------------------------------------------------------------------------

struct Upload {
  const char* data;
  size_t size;
  size_t at = 0;
};

size_t ReadBody(char* out, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  const size_t k = std::min(size * n, u->size - u->at);
  std::memcpy(out, u->data + u->at, k);
  u->at += k;
  return k;
}

struct Download {
  std::unique_ptr<char[]> data;
  size_t size = 0;
  size_t capacity = 0;
};

size_t WriteBody(char* in, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t k = size * n;
  if (d->size + k > d->capacity) return 0;  // more than expected: fail the transfer
  std::memcpy(d->data.get() + d->size, in, k);
  d->size += k;
  return k;
}

class Curl {
 public:
  Curl() : curl_(curl_easy_init()) {
    headers_ = curl_slist_append(nullptr, "Expect:");  // no 100-continue round trip
  }
  ~Curl() {
    curl_slist_free_all(headers_);
    curl_easy_cleanup(curl_);
  }

  long Put(const std::string& url, const std::string& body) {
    Upload u{body.data(), body.size()};
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(curl_, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(curl_, CURLOPT_READDATA, &u);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(
        curl_, CURLOPT_WRITEFUNCTION, +[](char*, size_t s, size_t n, void*) { return s * n; });
    return Perform();
  }

  // GETs `url` into fresh memory of `size` bytes; the status, with the bytes in `*out`.
  long Get(const std::string& url, size_t size, Download* out) {
    out->data.reset(new char[size]);
    out->size = 0;
    out->capacity = size;
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, WriteBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, out);
    return Perform();
  }

 private:
  long Perform() {
    if (CURLcode c = curl_easy_perform(curl_); c != CURLE_OK) Die(curl_easy_strerror(c));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    return status;
  }

  CURL* curl_;
  curl_slist* headers_;
};

// --- the runs --------------------------------------------------------------------------------

int Runs() {
  const char* r = std::getenv("RUNS");
  return r != nullptr ? std::max(1, std::atoi(r)) : 3;
}

// A blob of `size` bytes whose first 8 bytes are `n`: a new blob for each n.
std::string Blob(size_t size, uint64_t n) {
  std::string s(size, '\0');
  std::mt19937_64 random(size);
  for (size_t i = 0; i + 8 <= size; i += 4096) {
    const uint64_t v = random();
    std::memcpy(s.data() + i, &v, 8);
  }
  std::memcpy(s.data(), &n, std::min<size_t>(8, size));
  return s;
}

Digest Blake(const std::string& s) {
  return Digest::Of(DigestAlgorithm::kBlake3, std::as_bytes(std::span(s.data(), s.size())));
}

template <typename F>
double Best(int runs, F&& run) {
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    run(i);
    best = std::min(best, Seconds(Clock::now() - start));
  }
  return best;
}

void Transfers(Cas& stream, Cas& batched, Curl& curl, const std::string& http,
               const std::string& baseline, size_t mib, uint64_t* counter) {
  const size_t size = mib << 20;
  const int runs = Runs();
  const bool fits_batch = size <= (4u << 20) - (64u << 10);
  // One buffer: each upload changes its first 8 bytes and hashes it before the clock starts.
  std::string buffer = Blob(size, 0);
  const auto bytes = std::as_bytes(std::span(buffer.data(), size));
  Digest digest;
  auto next = [&] {
    ++*counter;
    std::memcpy(buffer.data(), counter, 8);
    digest = Blake(buffer);
  };
  auto upload = [&](const char* path, int n, const std::function<void()>& put) {
    double best = 1e30;
    for (int i = 0; i < n; ++i) {
      next();
      const auto start = Clock::now();
      put();
      best = std::min(best, Seconds(Clock::now() - start));
    }
    Print("upload", path, size, best);
  };
  upload("reapi_bytestream", runs, [&] {
    if (packice::Status s = stream.Store(digest, bytes); !s.ok()) Die(s.ToString());
  });
  const Digest stored = digest;  // downloaded below
  upload("http_put", runs, [&] {
    if (long st = curl.Put(http + "/v1/cas/" + digest.ToString(), buffer); st != 201) {
      Die("PUT: HTTP " + std::to_string(st));
    }
  });
  if (fits_batch) {
    upload("reapi_batch", runs, [&] {
      if (packice::Status s = batched.Store(digest, bytes); !s.ok()) Die(s.ToString());
    });
  }
  std::string().swap(buffer);
  std::vector<Digest> digests = {stored};
  // Downloads of the first blob (on the node's local tier, in the page cache).
  Print("download", "reapi_bytestream", size, Best(runs, [&](int) {
          packice::Result<packice::CasBlob> b = stream.Fetch(digests[0], BlobRange::Full());
          if (!b.ok() || b->bytes.size() != size) Die("Fetch: " + b.status().ToString());
        }));
  if (fits_batch) {
    Print("download", "reapi_batch", size, Best(runs, [&](int) {
            packice::Result<packice::CasBlob> b = batched.Fetch(digests[0], BlobRange::Full());
            if (!b.ok() || b->bytes.size() != size) Die("Fetch: " + b.status().ToString());
          }));
  }
  Download d;
  Print("download", "http_get", size, Best(runs, [&](int) {
          if (curl.Get(http + "/v1/cas/" + digests[0].ToString(), size, &d) != 200 ||
              d.size != size) {
            Die("GET failed");
          }
        }));
  Print("download", "baseline_get", size, Best(runs, [&](int) {
          const std::string url = baseline + "/blob-" + std::to_string(mib);
          if (curl.Get(url, size, &d) != 200 || d.size != size) Die("baseline GET " + url);
        }));
}

void FindMissing(Cas& cas) {
  std::vector<Digest> digests;
  for (int i = 0; i < 10'000; ++i) {
    const std::string s = "find-missing blob " + std::to_string(i);
    digests.push_back(Blake(s));
    if (i % 2 != 0) continue;
    if (packice::Status st =
            cas.Store(digests.back(), std::as_bytes(std::span(s.data(), s.size())));
        !st.ok()) {
      Die(st.ToString());
    }
  }
  double best = 1e30;
  const char* runs = std::getenv("FIND_MISSING_RUNS");  // for profiling: many more
  for (int run = 0, n = runs != nullptr ? std::atoi(runs) : 20; run < n; ++run) {
    const auto start = Clock::now();
    packice::Result<std::vector<Digest>> missing = cas.FindMissing(digests);
    best = std::min(best, Seconds(Clock::now() - start));
    if (!missing.ok() || missing->size() != 5'000)
      Die("FindMissing: " + missing.status().ToString());
  }
  Print("find_missing_10000", "reapi", 10'000, best);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: cas_bench GRPC_TARGET HTTP_URL BASELINE_URL SIZE_MIB...\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string grpc = std::string("grpc://") + argv[1];
  packice::GrpcCasOptions streaming;
  streaming.max_batch_bytes = 0;  // ByteStream whatever the size
  streaming.max_fetch_bytes = 4ull << 30;
  streaming.verify_fetches = false;
  streaming.call_timeout = std::chrono::minutes(5);
  packice::GrpcCasOptions batching = streaming;
  batching.max_batch_bytes = UINT64_MAX;
  auto stream = packice::OpenGrpcCas(grpc, streaming);
  auto batched = packice::OpenGrpcCas(grpc, batching);
  if (!stream.ok() || !batched.ok()) Die(stream.status().ToString());
  Curl curl;
  uint64_t counter = 0;
  const std::string mode = std::getenv("ONLY") != nullptr ? std::getenv("ONLY") : "";
  if (mode != "find_missing") {
    for (int i = 4; i < argc; ++i) {
      Transfers(**stream, **batched, curl, argv[2], argv[3], std::strtoull(argv[i], nullptr, 10),
                &counter);
    }
  }
  if (mode != "transfers") FindMissing(**batched);
  return 0;
}
