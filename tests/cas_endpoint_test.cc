// CasEndpoint (src/client/cas_endpoint.h) against a real packiced with a CAS, over each URL it
// takes: the Unix socket (cas/ keys, mapped), gRPC (cas/ keys, copied) and HTTP (/v1/cas).
#include "client/cas_endpoint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using ::packice::testing::Daemon;
using ::packice::testing::TempDir;

std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s)); }
std::string Text(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

class CasEndpointTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    node_ = new Daemon;
    ASSERT_OK(node_->Start({"--store", "memory", "--capacity", "256M", "--cas-dir",
                            node_->data_dir() + "/cas", "--http", "127.0.0.1:0", "--grpc",
                            "127.0.0.1:0"}));
  }
  static void TearDownTestSuite() {
    delete node_;
    node_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(node_, nullptr);
    const std::string& t = GetParam();
    url_ = t == "uds" ? node_->url() : t == "http" ? node_->http_url() : node_->grpc_url();
    ASSERT_FALSE(url_.empty()) << node_->log();
    Result<std::unique_ptr<CasEndpoint>> cas = OpenCasEndpoint(url_, {}, {});
    ASSERT_OK_R(cas);
    cas_ = *std::move(cas);
  }

  static Daemon* node_;
  std::string url_;
  std::unique_ptr<CasEndpoint> cas_;
};
Daemon* CasEndpointTest::node_ = nullptr;

TEST_P(CasEndpointTest, PutGetStatMissing) {
  const std::string blob = RandomBytes(200'000, 1);
  Result<Digest> d = cas_->Put(Bytes(blob), DigestAlgorithm::kBlake3);
  ASSERT_OK_R(d);
  EXPECT_EQ(*d, Digest::Of(DigestAlgorithm::kBlake3, Bytes(blob)));
  EXPECT_OK_R(cas_->Put(Bytes(blob), DigestAlgorithm::kBlake3));  // stored once
  Result<CasBlob> got = cas_->Get(*d, BlobRange::Full());
  ASSERT_OK_R(got);
  EXPECT_EQ(Text(got->bytes), blob);
  Result<uint64_t> size = cas_->Stat(*d);
  ASSERT_OK_R(size);
  EXPECT_EQ(*size, blob.size());
  const Digest absent = Digest::Of(DigestAlgorithm::kSha256, Bytes("absent " + GetParam()));
  Result<std::vector<Digest>> missing = cas_->Missing(std::vector<Digest>{absent, *d, absent});
  ASSERT_OK_R(missing);
  EXPECT_EQ(*missing, (std::vector<Digest>{absent, absent}));
  EXPECT_EQ(cas_->Stat(absent).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(cas_->Get(absent, BlobRange::Full()).status().code(), StatusCode::kNotFound);
}

TEST_P(CasEndpointTest, Ranges) {
  const std::string blob = RandomBytes(100'000, 2);
  const Digest d = *cas_->Put(Bytes(blob), DigestAlgorithm::kSha256);
  auto range = [&](uint64_t start, std::optional<uint64_t> length) -> std::string {
    Result<CasBlob> b = cas_->Get(d, BlobRange::Of(start, length));
    if (!b.ok()) return std::string(StatusCodeName(b.status().code()));
    EXPECT_EQ(b->offset, start);
    return Text(b->bytes);
  };
  const uint64_t n = blob.size();
  EXPECT_EQ(range(0, 0), "");
  EXPECT_EQ(range(0, 1), blob.substr(0, 1));
  EXPECT_EQ(range(n - 1, 1), blob.substr(n - 1));
  EXPECT_EQ(range(10, std::nullopt), blob.substr(10));
  EXPECT_EQ(range(n, std::nullopt), "");
  EXPECT_EQ(range(n + 1, std::nullopt), "out_of_range");
  EXPECT_EQ(range(n - 1, 2), "out_of_range");
  const Digest empty = Digest::Empty(DigestAlgorithm::kBlake3);
  Result<CasBlob> e = cas_->Get(empty, BlobRange::Full());
  ASSERT_OK_R(e);
  EXPECT_TRUE(e->bytes.empty());
  EXPECT_EQ(cas_->Get(empty, BlobRange::Of(1, std::nullopt)).status().code(),
            StatusCode::kOutOfRange);
}

TEST_P(CasEndpointTest, PutFileAndGetToAFile) {
  TempDir dir;
  const std::string in = dir.path() + "/in", out = dir.path() + "/out";
  const std::string blob = RandomBytes(9 << 20, 3);  // more than one chunk
  std::ofstream(in, std::ios::binary) << blob;
  uint64_t last_progress = 0;
  CasEndpointOptions o;
  o.progress = [&](std::string_view, uint64_t done, uint64_t total) {
    EXPECT_LE(done, total);
    last_progress = done;
  };
  Result<std::unique_ptr<CasEndpoint>> cas = OpenCasEndpoint(url_, {}, o);
  ASSERT_OK_R(cas);
  Result<Digest> d = (*cas)->PutFile(in, DigestAlgorithm::kBlake3);
  ASSERT_OK_R(d);
  EXPECT_EQ(*d, Digest::Of(DigestAlgorithm::kBlake3, Bytes(blob)));
  const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_OK((*cas)->GetTo(*d, BlobRange::Of(1, std::nullopt), fd));
  close(fd);
  std::ifstream f(out, std::ios::binary);
  const std::string back((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(back, blob.substr(1));
  EXPECT_EQ(last_progress, blob.size() - 1);
  EXPECT_EQ((*cas)->PutFile(dir.path() + "/none", DigestAlgorithm::kBlake3).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ((*cas)->PutFile(dir.path(), DigestAlgorithm::kBlake3).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(CasEndpointTest, StoreRefusesContentThatIsNotTheDigest) {
  const std::string blob = "the real bytes of " + GetParam();
  const Digest d = Digest::Of(DigestAlgorithm::kBlake3, Bytes(blob));
  const std::string wrong(blob.size(), 'x');
  EXPECT_EQ(cas_->Store(d, Bytes(wrong)).code(), StatusCode::kDigestMismatch);
  EXPECT_EQ(cas_->Store(d, Bytes("short")).code(), StatusCode::kDigestMismatch);
  EXPECT_EQ(cas_->Stat(d).status().code(), StatusCode::kNotFound);
  EXPECT_OK(cas_->Store(d, Bytes(blob)));
  EXPECT_EQ(cas_->Store(d, Bytes(wrong)).code(), StatusCode::kDigestMismatch);  // even stored
}

TEST_P(CasEndpointTest, ConcurrentPutsOfOneBlob) {
  const std::string blob = RandomBytes(1 << 20, 4);
  std::vector<std::thread> threads;
  std::vector<Status> results(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      Result<std::unique_ptr<CasEndpoint>> cas = OpenCasEndpoint(url_, {}, {});
      results[i] =
          cas.ok() ? (*cas)->Put(Bytes(blob), DigestAlgorithm::kBlake3).status() : cas.status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : results) EXPECT_OK(s);
  Result<CasBlob> got =
      cas_->Get(Digest::Of(DigestAlgorithm::kBlake3, Bytes(blob)), BlobRange::Full());
  ASSERT_OK_R(got);
  EXPECT_EQ(Text(got->bytes), blob);
}

INSTANTIATE_TEST_SUITE_P(Transports, CasEndpointTest, ::testing::Values("uds", "http", "grpc"),
                         [](const auto& info) { return info.param; });

// Over the socket a get is the node's blob file mapped here, read-only: no copy.
TEST(CasEndpointUdsTest, AGetMapsTheBlobFile) {
  Daemon node;
  ASSERT_OK(node.Start(
      {"--store", "memory", "--capacity", "64M", "--cas-dir", node.data_dir() + "/cas"}));
  Result<std::unique_ptr<CasEndpoint>> cas = OpenCasEndpoint(node.url(), {}, {});
  ASSERT_OK_R(cas);
  const std::string blob = RandomBytes(4 << 20, 5);
  const Digest d = *(*cas)->Put(Bytes(blob), DigestAlgorithm::kBlake3);
  Result<CasBlob> got = (*cas)->Get(d, BlobRange::Of(4096, 4096));
  ASSERT_OK_R(got);
  const auto addr = reinterpret_cast<uintptr_t>(got->bytes.data());
  std::ifstream maps("/proc/self/maps");
  std::string line, mapping;
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && lo <= addr && addr < hi) {
      mapping = line;
    }
  }
  EXPECT_NE(mapping.find(" r--s "), std::string::npos) << mapping;
  EXPECT_NE(mapping.find(node.data_dir() + "/cas/blake3/"), std::string::npos) << mapping;
  EXPECT_EQ(Text(got->bytes), blob.substr(4096, 4096));
}

TEST(CasEndpointUdsTest, ANodeWithoutACasSaysSo) {
  Daemon node;
  ASSERT_OK(node.Start({"--store", "memory", "--capacity", "64M"}));
  Result<std::unique_ptr<CasEndpoint>> cas = OpenCasEndpoint(node.url(), {}, {});
  ASSERT_OK_R(cas);
  Result<Digest> d = (*cas)->Put(Bytes("x"), DigestAlgorithm::kBlake3);
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("serves no CAS"), std::string::npos) << d.status().ToString();
  EXPECT_EQ(OpenCasEndpoint("ftp://x", {}, {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace packice
