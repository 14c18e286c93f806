// The REAPI client Cas (OpenGrpcCas) against the in-process REAPI services on a real loopback
// port: batches and ByteStream, both digest functions, ranges, FindMissing in several requests,
// the error codes, the hop marker, and a server that sends other bytes than the digest's.
#include "transport/grpc/reapi/reapi_cas.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "transport/grpc/reapi/reapi_testing.h"

namespace packice::testing {
namespace {

constexpr size_t kMiB = 1 << 20;

std::string AsString(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

Digest Blake(const std::string& s) { return Digest::Of(DigestAlgorithm::kBlake3, Bytes(s)); }

std::shared_ptr<Cas> Client(const ReapiNode& node, GrpcCasOptions options = {}) {
  Result<std::shared_ptr<Cas>> cas = OpenGrpcCas("grpc://" + node.target(), options);
  EXPECT_OK_R(cas);
  return cas.ok() ? *cas : nullptr;
}

class ReapiCasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(node_.started());
    cas_ = Client(node_);
    ASSERT_NE(cas_, nullptr);
  }
  ReapiNode node_;
  std::shared_ptr<Cas> cas_;
};

TEST_F(ReapiCasTest, SmallBlobsOfBothAlgorithmsGoInBatches) {
  for (const Digest& d : {Sha("small sha"), Blake("small blake")}) {
    const std::string data = d.algorithm == DigestAlgorithm::kSha256 ? "small sha" : "small blake";
    EXPECT_CODE(cas_->Check(d), kNotFound);
    ASSERT_OK(cas_->Store(d, Bytes(data)));
    EXPECT_EQ(node_.cas().Get(d), data);  // on the server, under the same algorithm
    ASSERT_OK_AND_ASSIGN(uint64_t size, cas_->Check(d));
    EXPECT_EQ(size, data.size());
    ASSERT_OK_AND_ASSIGN(CasBlob blob, cas_->Fetch(d));
    EXPECT_EQ(AsString(blob.bytes), data);
    ASSERT_OK_AND_ASSIGN(CasBlob part, cas_->Fetch(d, BlobRange::Of(2, 3)));
    EXPECT_EQ(part.offset, 2u);
    EXPECT_EQ(AsString(part.bytes), data.substr(2, 3));
    EXPECT_FALSE(cas_->LocalPath(d).has_value());
  }
  // The same hex under the other function is another blob.
  Digest other = Sha("small sha");
  other.algorithm = DigestAlgorithm::kBlake3;
  EXPECT_CODE(cas_->Check(other), kNotFound);
}

TEST_F(ReapiCasTest, LargeBlobsGoOverByteStreamAndRangesAreRead) {
  const std::string data = PatternString(5 * kMiB + 17, 3);  // over the 4 MiB batch limit
  for (DigestAlgorithm a : {DigestAlgorithm::kSha256, DigestAlgorithm::kBlake3}) {
    const Digest d = Digest::Of(a, Bytes(data));
    ASSERT_OK(cas_->Store(d, Bytes(data)));
    EXPECT_EQ(node_.cas().Get(d), data);
    ASSERT_OK(cas_->Store(d, Bytes(data)));  // again: the server ends the write at once
    ASSERT_OK_AND_ASSIGN(CasBlob blob, cas_->Fetch(d));
    EXPECT_TRUE(AsString(blob.bytes) == data);
    ASSERT_OK_AND_ASSIGN(CasBlob part, cas_->Fetch(d, BlobRange::Of(3 * kMiB - 5, 2 * kMiB)));
    EXPECT_TRUE(AsString(part.bytes) == data.substr(3 * kMiB - 5, 2 * kMiB));
    ASSERT_OK_AND_ASSIGN(CasBlob tail, cas_->Fetch(d, BlobRange::Of(data.size() - 4, {})));
    EXPECT_EQ(AsString(tail.bytes), data.substr(data.size() - 4));
    ASSERT_OK_AND_ASSIGN(CasBlob end, cas_->Fetch(d, BlobRange::Of(data.size(), {})));
    EXPECT_TRUE(end.bytes.empty());
  }
}

TEST_F(ReapiCasTest, FindMissingSplitsRequestsAndKeepsTheOrder) {
  auto cas = Client(node_, {.max_find_missing_digests = 3});
  std::vector<Digest> digests, expected;
  for (int i = 0; i < 20; ++i) {
    const std::string s = "blob " + std::to_string(i);
    const Digest d = i % 2 ? Sha(s) : Blake(s);
    digests.push_back(d);
    if (i % 3 == 0) {
      ASSERT_OK(node_.cas().Store(d, Bytes(s)));
    } else {
      expected.push_back(d);
    }
  }
  digests.push_back(Digest::Empty(DigestAlgorithm::kBlake3));  // always there
  ASSERT_OK_AND_ASSIGN(std::vector<Digest> missing, cas->FindMissing(digests));
  EXPECT_EQ(missing, expected);
}

TEST_F(ReapiCasTest, ErrorsHaveTheProjectsCodes) {
  const std::string data = "some bytes";
  const Digest d = Sha(data);
  EXPECT_CODE(cas_->Fetch(d), kNotFound);
  EXPECT_CODE(cas_->Fetch(Sha(PatternString(6 * kMiB, 1))), kNotFound);  // over ByteStream
  ASSERT_OK(cas_->Store(d, Bytes(data)));
  EXPECT_CODE(cas_->Fetch(d, BlobRange::Of(data.size() + 1, {})), kOutOfRange);
  EXPECT_CODE(cas_->Fetch(d, BlobRange::Of(4, 100)), kOutOfRange);
  EXPECT_CODE(cas_->Store(Sha("other"), Bytes(data)), kDigestMismatch);  // sizes differ
  // Same size, other bytes: the server refuses them in the batch (REAPI's INVALID_ARGUMENT).
  EXPECT_CODE(cas_->Store(Sha("same size!"), Bytes(data)), kInvalidArgument);
  EXPECT_CODE(cas_->Check(Sha("same size!")), kNotFound);
  // Over ByteStream the Packice server's trailer names the code.
  const std::string big = PatternString(5 * kMiB, 9);
  EXPECT_CODE(cas_->Store(Sha(PatternString(5 * kMiB, 8)), Bytes(big)), kDigestMismatch);

  auto small = Client(node_, {.max_fetch_bytes = 1 << 10});
  const Digest large = node_.Put(PatternString(4 << 10, 2));
  EXPECT_CODE(small->Fetch(large), kOutOfCapacity);
  EXPECT_OK_R(small->Fetch(large, BlobRange::Of(1024, 1024)));

  EXPECT_CODE(OpenGrpcCas("http://" + node_.target()), kInvalidArgument);
  EXPECT_CODE(OpenGrpcCas("grpc://no-port"), kInvalidArgument);
  EXPECT_CODE(OpenGrpcCas("grpc://" + node_.target() + "/a/blobs/b"), kInvalidArgument);
}

TEST(ReapiCasNoServerTest, ADownServerIsUnavailable) {
  // A port nothing listens on: the open succeeds (no connection yet), the calls fail fast.
  Result<std::shared_ptr<Cas>> cas = OpenGrpcCas("grpc://127.0.0.1:1", {});
  ASSERT_OK_R(cas);
  EXPECT_CODE((*cas)->Check(Sha("x")), kUnavailable);
  EXPECT_CODE((*cas)->Store(Sha("x"), Bytes("x")), kUnavailable);
  EXPECT_CODE((*cas)->Fetch(Sha("x")), kUnavailable);
}

TEST(ReapiCasTokenTest, TheTokenIsSentAndAWrongOneRefused) {
  ReapiNode node({.bearer_token = "s3cret"});
  ASSERT_OK(node.started());
  auto good = Client(node, {.bearer_token = "s3cret"});
  auto bad = Client(node, {.bearer_token = "wrong"});
  ASSERT_OK(good->Store(Sha("tok"), Bytes("tok")));
  EXPECT_CODE(bad->Check(Sha("tok")), kPermissionDenied);
}

TEST(ReapiCasInstanceTest, TheUrlsPathIsTheInstanceName) {
  ReapiNode node({.instance_names = {"main/ci"}});
  ASSERT_OK(node.started());
  Result<std::shared_ptr<Cas>> named = OpenGrpcCas("grpc://" + node.target() + "/main/ci");
  ASSERT_OK_R(named);
  const std::string big = PatternString(5 * kMiB, 4);
  ASSERT_OK((*named)->Store(Sha(big), Bytes(big)));  // the ByteStream name carries it too
  ASSERT_OK_R((*named)->Fetch(Sha(big), BlobRange::Of(kMiB, kMiB)));
  EXPECT_CODE(Client(node)->Check(Sha(big)), kInvalidArgument);  // "" is not served
}

// A Cas that hands out other bytes than the blob's: a remote that lies.
class LyingCas final : public Cas {
 public:
  Status Store(const Digest&, std::span<const std::byte>) override { return Status::Ok(); }
  Result<uint64_t> Check(const Digest& d) override { return d.size; }
  Result<CasBlob> Fetch(const Digest& d, BlobRange range) override {
    PACKICE_ASSIGN_OR_RETURN(auto span, range.Resolve(d.size));
    auto bytes = std::make_shared<std::string>(span.second, 'L');
    CasBlob out{.digest = d, .offset = span.first};
    out.bytes = Bytes(*bytes);
    out.holder = bytes;
    return out;
  }
  std::optional<std::string> LocalPath(const Digest&) override { return std::nullopt; }
};

TEST(ReapiCasForwardedTest, MarkedCallsReachTheForwardedCasAndLiesAreCaught) {
  ReapiNode node({.forwarded_cas = std::make_shared<LyingCas>()});
  ASSERT_OK(node.started());
  const Digest d = node.Put("the real bytes");
  auto plain = Client(node);
  auto forwarded = Client(node, {.forwarded = true});
  ASSERT_OK_AND_ASSIGN(CasBlob real, plain->Fetch(d));
  EXPECT_EQ(AsString(real.bytes), "the real bytes");
  // The marked call reaches the lying Cas: a whole blob is checked, a range cannot be.
  EXPECT_CODE(forwarded->Fetch(d), kDigestMismatch);
  ASSERT_OK_AND_ASSIGN(CasBlob part, forwarded->Fetch(d, BlobRange::Of(0, 3)));
  EXPECT_EQ(AsString(part.bytes), "LLL");
  const std::string big = PatternString(5 * kMiB, 5);
  EXPECT_CODE(forwarded->Fetch(Sha(big)), kDigestMismatch);  // over ByteStream as well
  auto unchecked = Client(node, {.verify_fetches = false, .forwarded = true});
  EXPECT_OK_R(unchecked->Fetch(d));
}

// A TCP proxy on 127.0.0.1 to `port` that breaks its first connection (300 ms after it stops
// forwarding, so the server has read what it got) before more than `cut_after` bytes went from
// the client to the server; later connections pass everything. Counts the bytes.
class BreakingProxy {
 public:
  BreakingProxy(int port, uint64_t cut_after) : port_(port), cut_after_(cut_after) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    listen_port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { Accept(); });
  }
  ~BreakingProxy() {
    stop_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    acceptor_.join();
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (std::thread& t : pumps_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(listen_port_); }
  uint64_t upstream_bytes() const { return upstream_.load(); }
  int connections() const { return connections_.load(); }

 private:
  void Accept() {
    while (!stop_) {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(port_));
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      const bool breaks = connections_.fetch_add(1) == 0;
      fds_.push_back(client);
      fds_.push_back(server);
      pumps_.emplace_back([=, this] { Pump(client, server, breaks, true); });
      pumps_.emplace_back([=, this] { Pump(server, client, false, false); });
    }
  }
  void Pump(int from, int to, bool breaks, bool upstream) {
    char buf[64 << 10];
    uint64_t moved = 0;
    for (;;) {
      const ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0) break;
      if (breaks && moved + uint64_t(n) > cut_after_) {
        // Let the server take in what it was sent before the connection breaks.
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        break;
      }
      if (::write(to, buf, size_t(n)) != n) break;
      moved += uint64_t(n);
      if (upstream) upstream_ += uint64_t(n);
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  const int port_;
  const uint64_t cut_after_;
  int listener_ = -1;
  int listen_port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> upstream_{0};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::vector<int> fds_;  // touched by the acceptor only, then by the destructor
  std::vector<std::thread> pumps_;
};

TEST(ReapiCasResumeTest, ABrokenWriteStreamIsResumedWhereTheServerStopped) {
  ReapiNode node;
  ASSERT_OK(node.started());
  const int port = std::stoi(node.target().substr(node.target().rfind(':') + 1));
  BreakingProxy proxy(port, 5 * kMiB);
  Result<std::shared_ptr<Cas>> cas =
      OpenGrpcCas("grpc://" + proxy.target(), {.max_batch_bytes = 0, .write_attempts = 20});
  ASSERT_OK_R(cas);
  const std::string data = PatternString(8 * kMiB, 6);
  ASSERT_OK((*cas)->Store(Sha(data), Bytes(data)));
  EXPECT_EQ(node.cas().Get(Sha(data)), data);
  EXPECT_GE(proxy.connections(), 2);
  // Resumed, not sent again: well under the 5 + 8 MiB a restart from 0 would take.
  EXPECT_LT(proxy.upstream_bytes(), 11 * kMiB);
}

}  // namespace
}  // namespace packice::testing
