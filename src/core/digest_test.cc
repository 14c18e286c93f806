// Digests, their text forms, HashFile, BlobRange::Resolve and the Cas helpers
// (include/packice/cas.h, src/core/digest.cc).
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "packice/cas.h"
#include "testing.h"

namespace packice {
namespace {

using testing::PatternString;
using testing::TempDir;

constexpr DigestAlgorithm kBlake3 = DigestAlgorithm::kBlake3;
constexpr DigestAlgorithm kSha256 = DigestAlgorithm::kSha256;
constexpr DigestAlgorithm kAlgorithms[] = {kBlake3, kSha256};
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kBuffer = 256 << 10;  // HashFile's read buffer

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

std::string HexOf(DigestAlgorithm algorithm, std::string_view data) {
  return Digest::Of(algorithm, Bytes(data)).hex();
}

// --- the algorithms ----------------------------------------------------------------------

TEST(DigestTest, KnownVectors) {
  EXPECT_EQ(HexOf(kBlake3, ""), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
  EXPECT_EQ(HexOf(kBlake3, "abc"),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85");
  EXPECT_EQ(HexOf(kSha256, ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexOf(kSha256, "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// What b3sum 1.2.0 and sha256sum (coreutils 9.1) print for PatternString(3 MiB + 17, 7): many
// BLAKE3 chunks and a partial one, through the SIMD paths.
TEST(DigestTest, PatternDataAsB3sumAndSha256sumHashIt) {
  const std::string data = PatternString(3 * kMiB + 17, 7);
  EXPECT_EQ(HexOf(kBlake3, data),
            "0b300990b72b91bb58bfade2f803b2c660a59413dd8d1120e5c3990fa351b137");
  EXPECT_EQ(HexOf(kSha256, data),
            "d9cadb4b1b3865ec70e6292910ac84751fbba3abf7a59035916efe5efa208b2f");
}

TEST(DigestTest, OfCountsTheSize) {
  const Digest d = Digest::Of(kSha256, Bytes("hello"));
  EXPECT_EQ(d.algorithm, kSha256);
  EXPECT_EQ(d.size, 5u);
}

TEST(DigestTest, EmptyIsTheDigestOfNoBytes) {
  for (DigestAlgorithm a : kAlgorithms) {
    EXPECT_EQ(Digest::Empty(a), Digest::Of(a, {}));
    EXPECT_TRUE(Digest::Empty(a).empty_blob());
    EXPECT_FALSE(Digest::Of(a, Bytes("x")).empty_blob());
  }
  EXPECT_NE(Digest::Empty(kBlake3), Digest::Empty(kSha256));
}

TEST(HasherTest, PiecesHashAsTheWhole) {
  const std::string data = PatternString(3 * kMiB + 17, 3);
  // Around every power of two: BLAKE3's 64-byte blocks, 1 KiB chunks and subtrees of chunks,
  // SHA-256's 64-byte blocks; and at both ends.
  std::vector<size_t> splits = {0, 2 * kMiB + 511, data.size() - 1, data.size()};
  for (size_t p = 1; p < data.size(); p *= 2) splits.insert(splits.end(), {p - 1, p, p + 1});
  for (DigestAlgorithm a : kAlgorithms) {
    const Digest whole = Digest::Of(a, Bytes(data));
    for (size_t split : splits) {
      Hasher hasher(a);
      hasher.Update(Bytes(data).first(split));
      hasher.Update(Bytes(data).subspan(split));
      EXPECT_EQ(hasher.Finish(), whole) << DigestAlgorithmName(a) << " split at " << split;
    }
  }
}

TEST(HasherTest, ByteAtATimeAndUnevenPieces) {
  const std::string data = PatternString(5000, 9);
  for (DigestAlgorithm a : kAlgorithms) {
    Hasher bytes(a);
    for (size_t i = 0; i < data.size(); ++i) bytes.Update(Bytes(data).subspan(i, 1));
    Hasher uneven(a);
    for (size_t at = 0, n = 1; at < data.size(); at += n, n = n * 3 + 1) {
      uneven.Update(Bytes(data).subspan(at, std::min(n, data.size() - at)));
    }
    const Digest whole = Digest::Of(a, Bytes(data));
    EXPECT_EQ(bytes.Finish(), whole);
    EXPECT_EQ(uneven.Finish(), whole);
  }
}

TEST(HasherTest, MovedHasherCarriesItsState) {
  Hasher first(kBlake3);
  first.Update(Bytes("ab"));
  Hasher second = std::move(first);
  second.Update(Bytes("c"));
  EXPECT_EQ(second.Finish(), Digest::Of(kBlake3, Bytes("abc")));
}

// --- names and text forms ----------------------------------------------------------------

TEST(DigestAlgorithmTest, NamesRoundTrip) {
  for (DigestAlgorithm a : kAlgorithms) {
    ASSERT_OK_AND_ASSIGN(DigestAlgorithm back, ParseDigestAlgorithm(DigestAlgorithmName(a)));
    EXPECT_EQ(back, a);
  }
  EXPECT_EQ(DigestAlgorithmName(kBlake3), "blake3");
  EXPECT_EQ(DigestAlgorithmName(kSha256), "sha256");
  EXPECT_CODE(ParseDigestAlgorithm("BLAKE3"), kInvalidArgument);
  EXPECT_CODE(ParseDigestAlgorithm("md5"), kInvalidArgument);
  EXPECT_CODE(ParseDigestAlgorithm(""), kInvalidArgument);
}

TEST(DigestTextTest, ToStringForms) {
  const Digest d = Digest::Of(kSha256, Bytes("abc"));
  EXPECT_EQ(d.ToString(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad/3");
  EXPECT_EQ(d.ToBareString(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad/3");
  EXPECT_EQ(Digest::Empty(kBlake3).ToString(),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262/0");
}

TEST(DigestTextTest, ParseRoundTrips) {
  for (DigestAlgorithm a : kAlgorithms) {
    for (const std::string& data : {std::string(), std::string("abc"), PatternString(5000, 1)}) {
      const Digest d = Digest::Of(a, Bytes(data));
      ASSERT_OK_AND_ASSIGN(Digest parsed, Digest::Parse(d.ToString()));
      EXPECT_EQ(parsed, d);
      ASSERT_OK_AND_ASSIGN(Digest bare, Digest::Parse(d.ToBareString(), a));
      EXPECT_EQ(bare, d);
    }
  }
}

TEST(DigestTextTest, BareFormIsSha256UnlessToldOtherwise) {
  const std::string hex(64, 'a');
  ASSERT_OK_AND_ASSIGN(Digest sha, Digest::Parse(hex + "/7"));
  EXPECT_EQ(sha.algorithm, kSha256);
  EXPECT_EQ(sha.size, 7u);
  EXPECT_EQ(sha.hex(), hex);
  ASSERT_OK_AND_ASSIGN(Digest b3, Digest::Parse(hex + "/7", kBlake3));
  EXPECT_EQ(b3.algorithm, kBlake3);
  // An explicit prefix wins over `bare`.
  ASSERT_OK_AND_ASSIGN(Digest prefixed, Digest::Parse("sha256:" + hex + "/7", kBlake3));
  EXPECT_EQ(prefixed.algorithm, kSha256);
}

TEST(DigestTextTest, SizeLimits) {
  const std::string hex(64, '0');
  ASSERT_OK_AND_ASSIGN(Digest zero, Digest::Parse(hex + "/0"));
  EXPECT_EQ(zero.size, 0u);
  ASSERT_OK_AND_ASSIGN(Digest max, Digest::Parse(hex + "/9223372036854775807"));
  EXPECT_EQ(max.size, uint64_t{std::numeric_limits<int64_t>::max()});
  EXPECT_CODE(Digest::Parse(hex + "/9223372036854775808"), kInvalidArgument);
  EXPECT_CODE(Digest::Parse(hex + "/18446744073709551615"), kInvalidArgument);
  EXPECT_CODE(Digest::Parse(hex + "/18446744073709551616"), kInvalidArgument);
  EXPECT_CODE(Digest::Parse(hex + "/99999999999999999999999"), kInvalidArgument);
}

struct Rejected {
  std::string text;
  std::string says;  // part of the message
};

TEST(DigestTextTest, ParseRejectsWithAReason) {
  const std::string hex = std::string(63, 'a') + "b";
  const std::vector<Rejected> cases = {
      {"", "empty"},
      {"blake3:", "no '/'"},
      {hex, "no '/'"},
      {hex + "/", "size is empty"},
      {"/5", "0 characters"},
      {":" + hex + "/5", "empty digest algorithm"},
      {"md5:" + hex + "/5", "'md5:aaaa"},
      {"md5:" + hex + "/5", "unknown digest algorithm before ':'"},
      {"SHA256:" + hex + "/5", "unknown digest algorithm"},
      {"blake3:sha256:" + hex + "/5", "characters, not 64"},
      {hex.substr(1) + "/5", "63 characters"},
      {hex + "a/5", "65 characters"},
      {std::string(63, 'a') + "A/5", "upper-case hex digit 'A' at 63"},
      {std::string(63, 'a') + "g/5", "'g' at 63 is not a hex digit"},
      {hex + "/05", "leading zero"},
      {hex + "/00", "leading zero"},
      {hex + "/+5", "not a decimal number"},
      {hex + "/-5", "not a decimal number"},
      {hex + "/ 5", "not a decimal number"},
      {hex + "/5 ", "not a decimal number"},
      {" " + hex + "/5", "65 characters"},
      {hex + "/0x10", "not a decimal number"},
      {hex + "/5/", "more than one '/'"},
      {hex + "//5", "more than one '/'"},
      {hex + "/../5", "more than one '/'"},
      {"../" + hex + "/5", "more than one '/'"},
      {"sha256:../../../etc/passwd/5", "more than one '/'"},
      {std::string(60, 'a') + "/../5", "more than one '/'"},
      {std::string(62, 'a') + "../5", "'.' at 62"},
      {hex + std::string("/5\0", 3), "not a decimal number"},
      {std::string(10, 'a') + std::string(1, '\0') + std::string(53, 'a') + "/5", "'\\x00' at 10"},
      {hex + "/9223372036854775808", "larger than 2^63 - 1"},
  };
  for (const Rejected& c : cases) {
    Result<Digest> r = Digest::Parse(c.text);
    ASSERT_FALSE(r.ok()) << "accepted '" << c.text << "'";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.says), std::string_view::npos)
        << "'" << c.text << "': " << r.status().ToString() << " does not say '" << c.says << "'";
  }
}

TEST(DigestTextTest, MessageQuotesAbout80CharactersEscaped) {
  const std::string text = "\n" + std::string(1000, 'z') + "/1";
  Result<Digest> r = Digest::Parse(text);
  ASSERT_FALSE(r.ok());
  const std::string_view message = r.status().message();
  EXPECT_NE(message.find("digest '\\x0a" + std::string(76, 'z') + "...': "), std::string::npos)
      << message;
  EXPECT_LT(message.size(), 200u) << message;
  // Escaped bytes count as the characters they take.
  Result<Digest> nuls = Digest::Parse(std::string(200, '\0') + ":" + std::string(64, 'a') + "/1");
  ASSERT_FALSE(nuls.ok());
  std::string twenty_nuls;
  for (int i = 0; i < 20; ++i) twenty_nuls += "\\x00";
  EXPECT_EQ(nuls.status().message().find("digest '" + twenty_nuls + "...': "), 0u)
      << nuls.status().message();
}

TEST(DigestTextTest, FromHex) {
  const Digest d = Digest::Of(kBlake3, Bytes("abc"));
  ASSERT_OK_AND_ASSIGN(Digest back, Digest::FromHex(kBlake3, d.hex(), 3));
  EXPECT_EQ(back, d);
  EXPECT_CODE(Digest::FromHex(kBlake3, d.hex().substr(2), 3), kInvalidArgument);
  EXPECT_CODE(Digest::FromHex(kBlake3, d.hex() + "0", 3), kInvalidArgument);
  EXPECT_CODE(Digest::FromHex(kBlake3, d.hex() + "/3", 3), kInvalidArgument);
  std::string upper = d.hex();
  upper[5] = 'F';
  Result<Digest> r = Digest::FromHex(kBlake3, upper, 3);
  EXPECT_CODE(r, kInvalidArgument);
  EXPECT_NE(r.status().message().find("upper-case"), std::string_view::npos);
  EXPECT_CODE(Digest::FromHex(kBlake3, d.hex(), uint64_t{1} << 63), kInvalidArgument);
  ASSERT_OK_R(Digest::FromHex(kSha256, d.hex(), (uint64_t{1} << 63) - 1));
}

// --- HashFile ------------------------------------------------------------------------------

class HashFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& data) {
    const std::string path = dir_.path() + "/" + name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  TempDir dir_;
};

// An empty file, and around the 256 KiB read buffer.
TEST_F(HashFileTest, MatchesDigestOf) {
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, kBuffer - 1, kBuffer, kBuffer + 1, kMiB - 1, kMiB,
                        3 * kMiB + 17}) {
    const std::string data = PatternString(size, static_cast<uint8_t>(size));
    const std::string path = Write("f" + std::to_string(size), data);
    for (DigestAlgorithm a : kAlgorithms) {
      ASSERT_OK_AND_ASSIGN(Digest d, HashFile(path, a));
      EXPECT_EQ(d, Digest::Of(a, Bytes(data))) << DigestAlgorithmName(a) << " size " << size;
    }
  }
}

TEST_F(HashFileTest, Errors) {
  EXPECT_CODE(HashFile(dir_.path() + "/missing", kBlake3), kNotFound);
  const std::string file = Write("file", "x");
  EXPECT_CODE(HashFile(file + "/below", kBlake3), kNotFound);  // ENOTDIR
  EXPECT_CODE(HashFile(dir_.path(), kBlake3), kInvalidArgument);
  EXPECT_CODE(HashFile("/dev/null", kSha256), kInvalidArgument);
  const std::string fifo = dir_.path() + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  EXPECT_CODE(HashFile(fifo, kBlake3), kInvalidArgument);  // refused, not waited on
}

// A file that ends before the size fstat gave (as if it shrank while it was hashed): a sysfs
// attribute says it is a page long and holds a few bytes.
TEST_F(HashFileTest, FileShorterThanItsSizeIsInternal) {
  const std::string path = "/sys/devices/system/cpu/online";
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 64) {
    GTEST_SKIP() << path << " is not a sysfs attribute of a page here";
  }
  Result<Digest> r = HashFile(path, kBlake3);
  EXPECT_CODE(r, kInternal);
  EXPECT_NE(r.status().message().find("unexpected end of file"), std::string_view::npos)
      << r.status().ToString();
}

// --- BlobRange -----------------------------------------------------------------------------

using Span = std::pair<uint64_t, uint64_t>;

Span ResolveOk(BlobRange range, uint64_t size) {
  Result<Span> r = range.Resolve(size);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Span{~0ull, ~0ull};
}

TEST(BlobRangeTest, ResolveWithinTheBlob) {
  EXPECT_EQ(ResolveOk(BlobRange::Full(), 10), Span(0, 10));
  EXPECT_EQ(ResolveOk(BlobRange::Of(0, 0), 10), Span(0, 0));
  EXPECT_EQ(ResolveOk(BlobRange::Of(0, 10), 10), Span(0, 10));
  EXPECT_EQ(ResolveOk(BlobRange::Of(3, std::nullopt), 10), Span(3, 7));
  EXPECT_EQ(ResolveOk(BlobRange::Of(3, 4), 10), Span(3, 4));
  EXPECT_EQ(ResolveOk(BlobRange::Of(9, 1), 10), Span(9, 1));  // the last byte
  EXPECT_EQ(ResolveOk(BlobRange::Of(9, std::nullopt), 10), Span(9, 1));
}

TEST(BlobRangeTest, EmptyRangeAtTheEnd) {
  EXPECT_EQ(ResolveOk(BlobRange::Of(10, std::nullopt), 10), Span(10, 0));
  EXPECT_EQ(ResolveOk(BlobRange::Of(10, 0), 10), Span(10, 0));
  EXPECT_EQ(ResolveOk(BlobRange::Full(), 0), Span(0, 0));  // the empty blob
  EXPECT_EQ(ResolveOk(BlobRange::Of(0, 0), 0), Span(0, 0));
}

TEST(BlobRangeTest, PastTheEndIsOutOfRange) {
  EXPECT_CODE(BlobRange::Of(10, 1).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(11, std::nullopt).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(11, 0).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(0, 11).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(9, 2).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(0, 1).Resolve(0), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(1, std::nullopt).Resolve(0), kOutOfRange);
}

// start + length wraps around 2^64: still past the end, not a short range near the start.
TEST(BlobRangeTest, LengthThatWrapsIsOutOfRange) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  EXPECT_CODE(BlobRange::Of(5, max).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(5, max - 3).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(max, 2).Resolve(10), kOutOfRange);
  EXPECT_CODE(BlobRange::Of(max, std::nullopt).Resolve(max - 1), kOutOfRange);
  EXPECT_EQ(ResolveOk(BlobRange::Of(max, 0), max), Span(max, 0));
  EXPECT_EQ(ResolveOk(BlobRange::Of(1, max - 1), max), Span(1, max - 1));
}

// --- the Cas helpers -----------------------------------------------------------------------

// Blobs in a map; Check of `broken` fails with kUnavailable.
class MapCas final : public Cas {
 public:
  Status Store(const Digest& digest, std::span<const std::byte> data) override {
    if (Digest::Of(digest.algorithm, data) != digest) return DigestMismatch("not its digest");
    blobs_[digest.ToString()] = data.size();
    return Status::Ok();
  }
  Result<uint64_t> Check(const Digest& digest) override {
    if (digest == broken) return Unavailable("broken");
    auto it = blobs_.find(digest.ToString());
    if (it == blobs_.end()) return NotFound(digest.ToString());
    return it->second;
  }
  Result<CasBlob> Fetch(const Digest&, BlobRange) override { return Unimplemented("Fetch"); }
  std::optional<std::string> LocalPath(const Digest&) override { return std::nullopt; }

  Digest broken = Digest::Of(kSha256, Bytes("broken"));

 private:
  std::map<std::string, uint64_t> blobs_;
};

TEST(CasTest, PutStoresUnderTheDigestOfTheContent) {
  MapCas cas;
  ASSERT_OK_AND_ASSIGN(Digest d, cas.Put(Bytes("hello")));
  EXPECT_EQ(d, Digest::Of(kBlake3, Bytes("hello")));
  ASSERT_OK_AND_ASSIGN(uint64_t size, cas.Check(d));
  EXPECT_EQ(size, 5u);
  ASSERT_OK_AND_ASSIGN(Digest sha, cas.Put(Bytes("hello"), kSha256));
  EXPECT_EQ(sha, Digest::Of(kSha256, Bytes("hello")));
  EXPECT_TRUE(cas.Contains(sha));
}

TEST(CasTest, FindMissingKeepsOrderAndPassesOnOtherErrors) {
  MapCas cas;
  ASSERT_OK_AND_ASSIGN(Digest a, cas.Put(Bytes("a")));
  const Digest b = Digest::Of(kBlake3, Bytes("b"));
  const Digest c = Digest::Of(kSha256, Bytes("c"));
  const std::vector<Digest> asked = {c, a, b, a};
  ASSERT_OK_AND_ASSIGN(std::vector<Digest> missing, cas.FindMissing(asked));
  EXPECT_EQ(missing, (std::vector<Digest>{c, b}));
  ASSERT_OK_AND_ASSIGN(std::vector<Digest> none, cas.FindMissing({}));
  EXPECT_TRUE(none.empty());
  const std::vector<Digest> with_broken = {b, cas.broken};
  EXPECT_CODE(cas.FindMissing(with_broken), kUnavailable);
}

}  // namespace
}  // namespace packice
