// The CAS over HTTP (docs/cas.md) served by a real packiced: Bazel's /cas and /ac layout,
// /v1/cas/{digest} with ranges, /v1/cas:missing, refusals of bad paths and bodies.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/io.h"
#include "http_testing.h"
#include "packice/cas.h"
#include "testing.h"

namespace packice {
namespace {

using ::packice::testing::BinPath;
using ::packice::testing::Daemon;
using ::packice::testing::RunProgram;
using ::packice::testing::TempDir;

using Reply = testing::HttpReply;
using testing::Http;

Digest DigestOf(DigestAlgorithm a, const std::string& s) {
  return Digest::Of(a, std::as_bytes(std::span<const char>(s.data(), s.size())));
}

class CasHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(node_.Start({"--store", "memory", "--capacity", "64M", "--http", "127.0.0.1:0",
                           "--cas-dir", node_.data_dir() + "/cas"}));
    http_ = node_.http_url();
    ASSERT_FALSE(http_.empty()) << node_.log();
  }

  // Runs `packice --url HTTP cas ARGS...`; its exit code, stdout and stderr in `*out`.
  int Cli(std::vector<std::string> args, std::string* out, const std::string& stdin_data = "") {
    args.insert(args.begin(), {BinPath("packice"), "--url", http_, "cas"});
    return RunProgram(args, out, stdin_data);
  }

  Daemon node_;
  std::string http_;
};

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST_F(CasHttpTest, BazelCasRoundTrip) {
  const std::string blob = "hello, bazel";
  const Digest d = DigestOf(DigestAlgorithm::kSha256, blob);
  const std::string url = http_ + "/cas/" + d.hex();
  EXPECT_EQ(Http("GET", url).status, 404);
  EXPECT_EQ(Http("HEAD", url).status, 404);
  Reply put = Http("PUT", url, &blob);
  EXPECT_EQ(put.status, 201) << put.body;
  Reply got = Http("GET", url);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, blob);
  Reply head = Http("HEAD", url);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.Has("content-length: " + std::to_string(blob.size()))) << head.headers;
  // The same blob by its full digest.
  EXPECT_EQ(Http("GET", http_ + "/v1/cas/" + d.ToString()).body, blob);
}

TEST_F(CasHttpTest, MismatchingPutStoresNothing) {
  const std::string blob = "the real bytes";
  const Digest d = DigestOf(DigestAlgorithm::kSha256, blob);
  const std::string other = "something else";
  Reply put = Http("PUT", http_ + "/cas/" + d.hex(), &other);
  EXPECT_EQ(put.status, 400);
  EXPECT_TRUE(put.Has("x-packice-error: digest_mismatch")) << put.headers;
  EXPECT_EQ(Http("GET", http_ + "/cas/" + d.hex()).status, 404);
  // A body whose length is not the digest's size: refused before it is read.
  Reply sized = Http("PUT", http_ + "/v1/cas/" + d.ToString(), &other);
  EXPECT_EQ(sized.status, 400);
  EXPECT_TRUE(sized.Has("x-packice-error: digest_mismatch")) << sized.headers;
  EXPECT_EQ(Http("HEAD", http_ + "/v1/cas/" + d.ToString()).status, 404);
}

TEST_F(CasHttpTest, ActionCacheRoundTrip) {
  const std::string key(64, 'a');
  const std::string result = "an action result";
  EXPECT_EQ(Http("GET", http_ + "/ac/" + key).status, 404);
  EXPECT_EQ(Http("PUT", http_ + "/ac/" + key, &result).status, 204);
  Reply got = Http("GET", http_ + "/ac/" + key);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, result);
  const std::string newer = "a newer result";
  EXPECT_EQ(Http("PUT", http_ + "/ac/" + key, &newer).status, 204);
  EXPECT_EQ(Http("GET", http_ + "/ac/" + key).body, newer);
  EXPECT_EQ(Http("HEAD", http_ + "/ac/" + key).status, 200);
}

TEST_F(CasHttpTest, Ranges) {
  const std::string blob = "0123456789";
  const Digest d = DigestOf(DigestAlgorithm::kBlake3, blob);
  const std::string url = http_ + "/v1/cas/" + d.ToString();
  ASSERT_EQ(Http("PUT", url, &blob).status, 201);
  Reply first = Http("GET", url, nullptr, {"Range: bytes=0-0"});
  EXPECT_EQ(first.status, 206);
  EXPECT_EQ(first.body, "0");
  EXPECT_TRUE(first.Has("content-range: bytes 0-0/10")) << first.headers;
  Reply last = Http("GET", url, nullptr, {"Range: bytes=9-"});
  EXPECT_EQ(last.status, 206);
  EXPECT_EQ(last.body, "9");
  Reply mid = Http("GET", url, nullptr, {"Range: bytes=3-5"});
  EXPECT_EQ(mid.body, "345");
  Reply past = Http("GET", url, nullptr, {"Range: bytes=10-"});
  EXPECT_EQ(past.status, 416);
  EXPECT_TRUE(past.Has("x-packice-error: out_of_range")) << past.headers;
  // The empty blob always exists.
  const Digest empty = Digest::Empty(DigestAlgorithm::kBlake3);
  Reply e = Http("GET", http_ + "/v1/cas/" + empty.ToString());
  EXPECT_EQ(e.status, 200);
  EXPECT_EQ(e.body, "");
  // A percent-encoded digest.
  std::string encoded = d.ToString();
  encoded.replace(encoded.find(':'), 1, "%3A");
  EXPECT_EQ(Http("GET", http_ + "/v1/cas/" + encoded).body, blob);
}

TEST_F(CasHttpTest, LargeBlobFromTheMappedView) {
  std::string blob(24 << 20, '\0');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>((i * 131) >> 7);
  const Digest d = DigestOf(DigestAlgorithm::kBlake3, blob);
  const std::string url = http_ + "/v1/cas/" + d.ToString();
  ASSERT_EQ(Http("PUT", url, &blob).status, 201);
  Reply got = Http("GET", url);
  EXPECT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == blob) << got.body.size();
  Reply tail = Http("GET", url, nullptr, {"Range: bytes=" + std::to_string(blob.size() - 5) + "-"});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, blob.substr(blob.size() - 5));
}

// The anonymous resident memory of process `pid` (RssAnon: heap and private mappings, not the
// page cache of files it maps), in bytes; 0 when unknown.
uint64_t AnonResidentBytes(pid_t pid) {
  Result<std::string> status = ReadSmallFile("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return 0;
  const size_t at = status->find("RssAnon:");
  if (at == std::string::npos) return 0;
  return std::strtoull(status->c_str() + at + 8, nullptr, 10) * 1024;
}

TEST_F(CasHttpTest, APutGoesToDiskWithoutACopyInMemory) {
  const std::string blob = testing::PatternString(160 << 20, 9);
  const Digest d = DigestOf(DigestAlgorithm::kBlake3, blob);
  const uint64_t before = AnonResidentBytes(node_.pid());
  ASSERT_GT(before, 0u);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> peak{before};
  std::thread sampler([&] {
    while (!done.load()) {
      peak.store(std::max(peak.load(), AnonResidentBytes(node_.pid())));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  Reply put = Http("PUT", http_ + "/v1/cas/" + d.ToString(), &blob);
  done.store(true);
  sampler.join();
  ASSERT_EQ(put.status, 201) << put.body;
  EXPECT_LT(peak.load() - before, 48ull << 20)
      << "the node's anonymous memory grew by " << (peak.load() - before);
  EXPECT_EQ(Http("HEAD", http_ + "/v1/cas/" + d.ToString()).status, 200);
}

TEST_F(CasHttpTest, MissingBatch) {
  const std::string blob = "present";
  const Digest have = DigestOf(DigestAlgorithm::kBlake3, blob);
  const Digest lack = DigestOf(DigestAlgorithm::kBlake3, "absent");
  ASSERT_EQ(Http("PUT", http_ + "/v1/cas/" + have.ToString(), &blob).status, 201);
  nlohmann::json ask;
  ask["digests"] = nlohmann::json::array({have.ToString(), lack.ToString()});
  const std::string body = ask.dump();
  Reply r = Http("POST", http_ + "/v1/cas:missing", &body);
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json answer = nlohmann::json::parse(r.body);
  ASSERT_EQ(answer["missing"].size(), 1u);
  EXPECT_EQ(answer["missing"][0], lack.ToString());

  nlohmann::json many;
  many["digests"] = std::vector<std::string>(10'001, lack.ToString());
  const std::string too_many = many.dump();
  Reply refused = Http("POST", http_ + "/v1/cas:missing", &too_many);
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(refused.body.find("at most 10000"), std::string::npos) << refused.body;
  const std::string junk = "{\"digests\": [\"nope\"]}";
  EXPECT_EQ(Http("POST", http_ + "/v1/cas:missing", &junk).status, 400);
  EXPECT_EQ(Http("GET", http_ + "/v1/cas:missing").status, 405);
}

TEST_F(CasHttpTest, PathTricks) {
  const std::string hex(64, 'b');
  std::string upper = hex;
  for (char& c : upper) c = 'B';
  for (const std::string& path : std::vector<std::string>{
           "/cas/../x", "/cas/" + hex.substr(1), "/cas/" + upper, "/cas/", "/ac/../cas/" + hex,
           "/ac/" + hex + "/x", "/v1/cas/nope", "/v1/cas/%zz", "/v1/cas/sha256:" + hex + "/-1"}) {
    Reply r = Http("GET", http_ + path);
    EXPECT_TRUE(r.status == 400 || r.status == 404) << path << " -> " << r.status;
  }
  EXPECT_EQ(Http("DELETE", http_ + "/cas/" + hex).status, 405);
  EXPECT_EQ(Http("GET", http_ + "/healthz").status, 200);  // still serving
}

TEST_F(CasHttpTest, Cli) {
  const std::string blob = "bytes from the command line";
  std::string out;
  ASSERT_EQ(Cli({"put", "-"}, &out, blob), 0) << out;
  const Digest d = DigestOf(DigestAlgorithm::kBlake3, blob);
  EXPECT_EQ(FirstLine(out), d.ToString());
  ASSERT_EQ(Cli({"put", "--sha256", "-"}, &out, blob), 0) << out;
  EXPECT_EQ(FirstLine(out), DigestOf(DigestAlgorithm::kSha256, blob).ToString());

  ASSERT_EQ(Cli({"get", d.ToString()}, &out), 0) << out;
  EXPECT_EQ(out, blob);
  ASSERT_EQ(Cli({"get", d.ToString(), "--range", "6-9"}, &out), 0) << out;
  EXPECT_EQ(out, "from");
  TempDir dir;
  const std::string file = dir.path() + "/blob";
  ASSERT_EQ(Cli({"get", d.ToString(), "-o", file}, &out), 0) << out;
  ASSERT_EQ(Cli({"put", file}, &out), 0) << out;  // the file holds the blob
  EXPECT_EQ(FirstLine(out), d.ToString());

  ASSERT_EQ(Cli({"stat", d.ToString()}, &out), 0) << out;
  EXPECT_NE(out.find("size: " + std::to_string(blob.size())), std::string::npos) << out;
  const Digest absent = DigestOf(DigestAlgorithm::kBlake3, "absent");
  EXPECT_EQ(Cli({"stat", absent.ToString()}, &out), 1);
  EXPECT_NE(out.find("packice: not_found"), std::string::npos) << out;
  ASSERT_EQ(Cli({"missing", d.ToString(), absent.ToString()}, &out), 0) << out;
  EXPECT_EQ(out, absent.ToString() + "\n");
  EXPECT_EQ(Cli({"get", d.ToString(), "--range", "100-"}, &out), 1);
  EXPECT_NE(out.find("out_of_range"), std::string::npos) << out;
  EXPECT_EQ(Cli({"get", "not-a-digest"}, &out), 1);
}

TEST(CasHttpNoCasTest, RoutesAnswer404) {
  Daemon node;
  ASSERT_OK(node.Start({"--store", "memory", "--capacity", "64M", "--http", "127.0.0.1:0"}));
  const std::string http = node.http_url();
  ASSERT_FALSE(http.empty()) << node.log();
  Reply r = Http("GET", http + "/cas/" + std::string(64, 'c'));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no content-addressed store"), std::string::npos) << r.body;
  EXPECT_EQ(Http("GET", http + "/ac/" + std::string(64, 'c')).status, 404);
}

}  // namespace
}  // namespace packice
