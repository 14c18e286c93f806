// The CAS's remote tier between real packiced processes (docs/cas.md): node B plain, node A
// with --cas-remote grpc://B. Writes on A reach B; B's blobs are served by A and then kept on
// A; a B that is down costs A nothing but the remote; ranges; a remote that sends bytes that
// are not the digest's; two nodes that are each other's remote.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "http_testing.h"
#include "packice/cas.h"
#include "testing.h"
#include "transport/grpc/reapi/reapi_cas.h"

namespace packice {
namespace {

using testing::Daemon;
using testing::Http;
using testing::HttpReply;
using testing::PatternString;

constexpr size_t kMiB = 1 << 20;

Digest Sha(const std::string& s) {
  return Digest::Of(DigestAlgorithm::kSha256, std::as_bytes(std::span(s.data(), s.size())));
}
Digest Blake(const std::string& s) {
  return Digest::Of(DigestAlgorithm::kBlake3, std::as_bytes(std::span(s.data(), s.size())));
}
std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// A CAS node on loopback ports, with its CAS in its own directory and `extra` flags.
Status StartNode(Daemon& node, std::vector<std::string> extra = {},
                 const std::string& grpc = "127.0.0.1:0") {
  std::vector<std::string> flags = {
      "--store",     "memory", "--capacity", "64M",       "--http",
      "127.0.0.1:0", "--grpc", grpc,         "--cas-dir", node.data_dir() + "/cas",
      "--log-level", "info"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return node.Start(flags);
}

// The value of metric sample `sample` (its name and labels as printed) on `node`; -1 if absent.
double Metric(const Daemon& node, const std::string& sample) {
  HttpReply r = Http("GET", node.http_url() + "/metrics");
  size_t at = 0;
  while ((at = r.body.find(sample + " ", at)) != std::string::npos) {
    if (at == 0 || r.body[at - 1] == '\n') return std::stod(r.body.substr(at + sample.size() + 1));
    ++at;
  }
  return -1;
}

std::string CasUrl(const Daemon& node, const Digest& d) {
  return node.http_url() + "/v1/cas/" + d.ToString();
}

class CasRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(StartNode(b_));
    ASSERT_FALSE(b_.grpc_url().empty()) << b_.log();
    ASSERT_OK(StartNode(a_, {"--cas-remote", b_.grpc_url()}));
    ASSERT_FALSE(a_.http_url().empty()) << a_.log();
  }
  Daemon b_;
  Daemon a_;
};

TEST_F(CasRemoteTest, APutOnAIsOnB) {
  const std::string blob = "put on A over HTTP";
  const Digest d = Blake(blob);
  HttpReply put = Http("PUT", CasUrl(a_, d), &blob);
  ASSERT_EQ(put.status, 201) << put.body;
  HttpReply on_b = Http("GET", CasUrl(b_, d));
  EXPECT_EQ(on_b.status, 200);
  EXPECT_EQ(on_b.body, blob);

  // Over REAPI on A (a client of A's gRPC port): small in a batch, large over ByteStream.
  Result<std::shared_ptr<Cas>> client = OpenGrpcCas(a_.grpc_url());
  ASSERT_OK_R(client);
  const std::string big = PatternString(6 * kMiB + 1, 4);
  for (const std::string* data : {&blob, &big}) {
    const std::string copy = *data + "!";
    ASSERT_OK((*client)->Store(Sha(copy), Bytes(copy)));
    EXPECT_EQ(Http("GET", CasUrl(b_, Sha(copy))).body, copy);
  }
}

TEST_F(CasRemoteTest, ABlobOnlyOnBIsServedByAAndThenKeptOnA) {
  const std::string blob = PatternString(3 * kMiB + 5, 6);
  const Digest d = Sha(blob);
  ASSERT_EQ(Http("PUT", CasUrl(b_, d), &blob).status, 201);
  EXPECT_EQ(Metric(a_, "packice_cas_local_blobs"), 0);
  HttpReply head = Http("HEAD", CasUrl(a_, d));  // Check reaches B; nothing is copied yet
  EXPECT_EQ(head.status, 200);
  HttpReply got = Http("GET", CasUrl(a_, d));
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == blob);
  EXPECT_EQ(Metric(a_, "packice_cas_reads_total{tier=\"remote\"}"), 1);
  EXPECT_EQ(Metric(a_, "packice_cas_local_blobs"), 1);
  EXPECT_EQ(b_.Stop(), 0);
  got = Http("GET", CasUrl(a_, d));
  ASSERT_EQ(got.status, 200);
  EXPECT_TRUE(got.body == blob);
  // Bazel's layout finds it by hash on A's local tier too.
  EXPECT_EQ(Http("GET", a_.http_url() + "/cas/" + d.hex()).status, 200);
}

TEST_F(CasRemoteTest, RangesThroughTheRemote) {
  const std::string blob = PatternString(20 * kMiB + 3, 8);  // several fill ranges
  const Digest d = Blake(blob);
  ASSERT_EQ(Http("PUT", CasUrl(b_, d), &blob).status, 201);
  HttpReply part = Http("GET", CasUrl(a_, d), nullptr, {"Range: bytes=9437180-9437199"});
  ASSERT_EQ(part.status, 206) << part.headers;
  EXPECT_EQ(part.body, blob.substr(9437180, 20));
  // And a client's range over REAPI on A (ByteStream read_offset/read_limit), now local.
  Result<std::shared_ptr<Cas>> client = OpenGrpcCas(a_.grpc_url());
  ASSERT_OK_R(client);
  Result<CasBlob> r = (*client)->Fetch(d, BlobRange::Of(blob.size() - 5 * kMiB, 5 * kMiB));
  ASSERT_OK_R(r);
  EXPECT_TRUE(std::string(reinterpret_cast<const char*>(r->bytes.data()), r->bytes.size()) ==
              blob.substr(blob.size() - 5 * kMiB));
  // Past the end: out_of_range, as for a local blob.
  const std::string other = "short";
  ASSERT_EQ(Http("PUT", CasUrl(b_, Blake(other)), &other).status, 201);
  EXPECT_EQ(Http("GET", CasUrl(a_, Blake(other)), nullptr, {"Range: bytes=9-"}).status, 416);
}

TEST_F(CasRemoteTest, WithBDownAStoresLocallyAndSaysSo) {
  const std::string before = "stored while B was up";
  ASSERT_EQ(Http("PUT", CasUrl(a_, Blake(before)), &before).status, 201);
  EXPECT_EQ(b_.Stop(), 0);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    const std::string blob = "stored while B is down " + std::to_string(i);
    HttpReply put = Http("PUT", CasUrl(a_, Blake(blob)), &blob);
    ASSERT_EQ(put.status, 201) << put.body;
    EXPECT_EQ(Http("GET", CasUrl(a_, Blake(blob))).body, blob);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(Http("GET", CasUrl(a_, Blake(before))).body, before);
  // A blob on neither: an unreachable remote holds nothing A can serve.
  HttpReply absent = Http("GET", CasUrl(a_, Blake("nowhere")));
  EXPECT_EQ(absent.status, 404) << absent.headers;
  // FindMissing still answers (from the local tier).
  const std::string body = "{\"digests\": [\"" + Blake(before).ToString() + "\", \"" +
                           Blake("nowhere").ToString() + "\"]}";
  HttpReply missing = Http("POST", a_.http_url() + "/v1/cas:missing", &body);
  EXPECT_EQ(missing.status, 200);
  EXPECT_EQ(missing.body.find(Blake(before).hex()), std::string::npos) << missing.body;
  EXPECT_NE(missing.body.find(Blake("nowhere").hex()), std::string::npos) << missing.body;
  EXPECT_EQ(Metric(a_, "packice_cas_remote_up"), 0);
  EXPECT_GE(Metric(a_, "packice_cas_remote_errors_total"), 1);
  EXPECT_NE(a_.log().find("event=cas_remote_down"), std::string::npos) << a_.log();

  // B back: A uses it again after its backoff.
  ASSERT_OK(StartNode(b_, {}, b_.grpc_url().substr(7)));
  bool copied = false;
  for (int i = 0; i < 100 && !copied; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::string probe = "stored after B came back " + std::to_string(i);
    ASSERT_EQ(Http("PUT", CasUrl(a_, Blake(probe)), &probe).status, 201);
    copied = Http("GET", CasUrl(b_, Blake(probe))).status == 200;
  }
  EXPECT_TRUE(copied);
  EXPECT_EQ(Metric(a_, "packice_cas_remote_up"), 1);
  EXPECT_NE(a_.log().find("event=cas_remote_up"), std::string::npos);
}

TEST_F(CasRemoteTest, BytesFromALyingRemoteAreNotStored) {
  // B's stored file is changed behind its back (same size, other bytes): B serves what its
  // disk holds (over 4 MiB: B's memory tier keeps no copy), and A's local tier refuses it.
  const std::string blob = PatternString(5 * kMiB, 9);
  const Digest d = Sha(blob);
  ASSERT_EQ(Http("PUT", CasUrl(b_, d), &blob).status, 201);
  const std::string hex = d.hex();
  const std::string path = b_.data_dir() + "/cas/sha256/" + hex.substr(0, 2) + "/" +
                           hex.substr(2, 2) + "/" + hex.substr(4);
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  ::chmod(path.c_str(), 0644);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1234);
    f.put('X');
  }
  HttpReply got = Http("GET", CasUrl(a_, d));
  EXPECT_NE(got.status, 200);
  EXPECT_TRUE(got.Has("x-packice-error: digest_mismatch")) << got.headers;
  EXPECT_EQ(Metric(a_, "packice_cas_local_blobs"), 0);
  EXPECT_EQ(Metric(a_, "packice_cas_stored_total"), 0);
  // A range cannot be checked on its own: the fill of the whole blob is, so it fails too.
  EXPECT_NE(Http("GET", CasUrl(a_, d), nullptr, {"Range: bytes=0-9"}).status, 206);
}

TEST(CasRemoteLoopTest, NodesThatAreEachOthersRemoteDoNotLoop) {
  Daemon a, b;
  ASSERT_OK(StartNode(a));
  const std::string a_grpc = a.grpc_url();
  ASSERT_FALSE(a_grpc.empty());
  ASSERT_OK(StartNode(b, {"--cas-remote", a_grpc}));
  EXPECT_EQ(a.Stop(), 0);
  ASSERT_OK(StartNode(a, {"--cas-remote", b.grpc_url()}, a_grpc.substr(7)));
  // A blob on neither: each asks the other once, and the other answers from its own tiers.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Http("GET", CasUrl(a, Blake("on neither"))).status, 404);
  EXPECT_EQ(Http("GET", CasUrl(b, Blake("on neither"))).status, 404);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  const std::string blob = "written on B";
  ASSERT_EQ(Http("PUT", CasUrl(b, Blake(blob)), &blob).status, 201);
  EXPECT_EQ(Http("GET", CasUrl(a, Blake(blob))).body, blob);
  EXPECT_EQ(Metric(a, "packice_cas_local_blobs"), 1);
}

TEST(CasRemoteSelfTest, ANodeRefusesItselfAsItsRemote) {
  Daemon a;
  ASSERT_OK(StartNode(a));
  const std::string grpc = a.grpc_url();
  EXPECT_EQ(a.Stop(), 0);
  // The node exits at start (its socket may accept for a moment before the CAS is opened).
  StartNode(a, {"--cas-remote", grpc}, grpc.substr(7)).IgnoreError();
  EXPECT_TRUE(testing::WaitUntil([&] { return !a.alive(); }, std::chrono::seconds(10)));
  EXPECT_NE(a.log().find("own gRPC port"), std::string::npos) << a.log();
}

}  // namespace
}  // namespace packice
