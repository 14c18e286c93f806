// Digests of content (include/packice/cas.h): BLAKE3 through its reference C implementation
// (built from Debian's librust-blake3-dev, see CMakeLists.txt), SHA-256 through OpenSSL's EVP;
// their strict text forms; hashing files; byte ranges; the non-virtual helpers of Cas.
#include <blake3.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>

#include "core/env.h"
#include "packice/cas.h"

namespace packice {
namespace {

using Hash = std::array<uint8_t, Digest::kHashBytes>;

constexpr uint64_t kMaxBlobSize = std::numeric_limits<int64_t>::max();  // 2^63 - 1
constexpr size_t kHexDigits = 2 * Digest::kHashBytes;
constexpr size_t kMaxQuotedChars = 80;
// Files are hashed from a buffer that read(2) fills, small enough to stay in the L2 cache
// while it is hashed: on the benchmark machine this is 2-3x faster than hashing a mapping of
// the file, whose pages come from memory, not the cache (docs/benchmarks.md, "Hashing").
constexpr size_t kReadBufferBytes = 256 << 10;

// The hashes of the empty blob: facts of the two algorithms (digest_test checks them).
constexpr Hash kBlake3Empty = {0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d,
                               0xea, 0x36, 0xdc, 0xc9, 0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1,
                               0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca, 0xe4, 0x1f, 0x32, 0x62};
constexpr Hash kSha256Empty = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
                               0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
                               0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "packice digest: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

bool KnownAlgorithm(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::kBlake3 || algorithm == DigestAlgorithm::kSha256;
}

// The start of `text` for an error message: other bytes than printable ASCII as \xNN, cut
// (with "...") at about kMaxQuotedChars characters.
std::string Quote(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t i = 0;
  for (; i < text.size() && out.size() < kMaxQuotedChars; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    }
  }
  if (i < text.size()) out += "...";
  return out;
}

// The same status with "<what> '<text>': " before its message.
Status About(std::string_view what, std::string_view text, const Status& status) {
  if (status.ok()) return status;
  return Status(status.code(),
                std::string(what) + " '" + Quote(text) + "': " + std::string(status.message()));
}

// Each byte's value as a lower-case hex digit, or kNotHex. A table, not comparisons: random hex
// digits make the branches of a comparison unpredictable, and a digest's 64 of them then cost
// several hundred nanoseconds (FindMissingBlobs parses thousands at once).
constexpr uint8_t kNotHex = 0xff;
constexpr std::array<uint8_t, 256> kHexValues = [] {
  std::array<uint8_t, 256> values{};
  values.fill(kNotHex);
  for (int c = '0'; c <= '9'; ++c) values[c] = static_cast<uint8_t>(c - '0');
  for (int c = 'a'; c <= 'f'; ++c) values[c] = static_cast<uint8_t>(c - 'a' + 10);
  return values;
}();

uint8_t HexValue(char c) { return kHexValues[static_cast<unsigned char>(c)]; }

// Why `hex` (of the right length) is not 64 lower-case hex digits.
Status NotHex(std::string_view hex) {
  for (size_t i = 0; i < hex.size(); ++i) {
    if (HexValue(hex[i]) != kNotHex) continue;
    const std::string at = "'" + Quote(hex.substr(i, 1)) + "' at " + std::to_string(i);
    if (hex[i] >= 'A' && hex[i] <= 'F') {
      return InvalidArgument("upper-case hex digit " + at + " (digests are lower-case)");
    }
    return InvalidArgument(at + " is not a hex digit");
  }
  return Status::Ok();
}

// 64 lower-case hex digits into `hash`. Errors: kInvalidArgument saying what is wrong (`hash`
// is then unspecified).
Status ParseHash(std::string_view hex, Hash* hash) {
  if (hex.size() != kHexDigits) {
    return InvalidArgument("the hash has " + std::to_string(hex.size()) + " characters, not " +
                           std::to_string(kHexDigits) + " hex digits");
  }
  uint8_t seen = 0;  // kNotHex has the high bits that no digit's value has
  for (size_t i = 0; i < hash->size(); ++i) {
    const uint8_t high = HexValue(hex[2 * i]);
    const uint8_t low = HexValue(hex[2 * i + 1]);
    seen |= high | low;
    (*hash)[i] = static_cast<uint8_t>(high << 4 | (low & 0xf));
  }
  return (seen & 0xf0) == 0 ? Status::Ok() : NotHex(hex);
}

Status CheckSize(uint64_t size) {
  if (size > kMaxBlobSize) return InvalidArgument("the size is larger than 2^63 - 1");
  return Status::Ok();
}

// A decimal size: digits only, no leading zero, at most 2^63 - 1. Errors: kInvalidArgument.
Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty()) return InvalidArgument("the size is empty");
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return InvalidArgument("the size is not a decimal number");
  }
  if (text.size() > 1 && text[0] == '0') return InvalidArgument("the size has a leading zero");
  // 19 digits fit in a uint64_t; more are above 2^63 - 1 anyway.
  if (text.size() > 19) return CheckSize(std::numeric_limits<uint64_t>::max());
  uint64_t size = 0;
  for (char c : text) size = size * 10 + static_cast<uint64_t>(c - '0');
  PACKICE_RETURN_IF_ERROR(CheckSize(size));
  return size;
}

// "<algorithm>:" off the front of `*text`, or `bare` when there is no ':'. The caller quotes
// the text, so the name is not quoted again.
Result<DigestAlgorithm> TakeAlgorithm(std::string_view* text, DigestAlgorithm bare) {
  const size_t colon = text->find(':');
  if (colon == std::string_view::npos) return bare;
  Result<DigestAlgorithm> algorithm = ParseDigestAlgorithm(text->substr(0, colon));
  if (!algorithm.ok()) {
    return InvalidArgument(colon == 0 ? "empty digest algorithm before ':'"
                                      : "unknown digest algorithm before ':' (blake3 or sha256)");
  }
  text->remove_prefix(colon + 1);
  return algorithm;
}

// "<hex>/<size>" into `digest`. Errors: kInvalidArgument.
Status ParseHashAndSize(std::string_view text, Digest* digest) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return InvalidArgument("no '/' before the size");
  const std::string_view size_text = text.substr(slash + 1);
  if (size_text.find('/') != std::string_view::npos) return InvalidArgument("more than one '/'");
  PACKICE_RETURN_IF_ERROR(ParseHash(text.substr(0, slash), &digest->hash));
  PACKICE_ASSIGN_OR_RETURN(digest->size, ParseSize(size_text));
  return Status::Ok();
}

Result<Digest> ParseDigest(std::string_view text, DigestAlgorithm bare) {
  if (text.empty()) return InvalidArgument("empty");
  Digest digest;
  PACKICE_ASSIGN_OR_RETURN(digest.algorithm, TakeAlgorithm(&text, bare));
  PACKICE_RETURN_IF_ERROR(ParseHashAndSize(text, &digest));
  return digest;
}

// --- SHA-256 through OpenSSL's EVP ---------------------------------------------------------

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using EvpMdCtx = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

// SHA-256 fetched once from the default provider (EVP_sha256() would fetch at every init).
const EVP_MD* Sha256() {
  static const EVP_MD* const md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (fetched == nullptr) Die("OpenSSL has no SHA256");
    return fetched;
  }();
  return md;
}

EvpMdCtx NewSha256() {
  EvpMdCtx ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), Sha256(), nullptr) != 1) {
    Die("EVP_DigestInit_ex(SHA256) failed");
  }
  return ctx;
}

// --- hashing files -------------------------------------------------------------------------

Status OpenError(const std::string& path, int err) {
  if (err == ENOENT || err == ENOTDIR) return NotFound("no file '" + path + "'");
  return ErrnoError("open '" + path + "'", err);
}

// Hashes the first `size` bytes of `fd`, read a buffer at a time. Errors: kInternal (a read
// failed, or the file ended early: it shrank).
Status HashBytesOf(Env& env, int fd, uint64_t size, const std::string& path, Hasher* hasher) {
  const size_t capacity = static_cast<size_t>(std::min<uint64_t>(size, kReadBufferBytes));
  auto buffer = std::make_unique_for_overwrite<std::byte[]>(capacity);
  for (uint64_t offset = 0; offset < size;) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(capacity, size - offset));
    const std::span<std::byte> bytes(buffer.get(), n);
    if (Status read = ReadFully(env, fd, bytes, offset, "pread"); !read.ok()) {
      return Internal("hashing '" + path + "' at byte " + std::to_string(offset) + ": " +
                      std::string(read.message()));
    }
    hasher->Update(bytes);
    offset += n;
  }
  return Status::Ok();
}

}  // namespace

std::string_view DigestAlgorithmName(DigestAlgorithm algorithm) {
  switch (algorithm) {
    case DigestAlgorithm::kBlake3:
      return "blake3";
    case DigestAlgorithm::kSha256:
      return "sha256";
  }
  return "unknown";
}

Result<DigestAlgorithm> ParseDigestAlgorithm(std::string_view name) {
  if (name == "blake3") return DigestAlgorithm::kBlake3;
  if (name == "sha256") return DigestAlgorithm::kSha256;
  if (name.empty()) return InvalidArgument("empty digest algorithm name");
  return InvalidArgument("unknown digest algorithm '" + Quote(name) + "' (blake3 or sha256)");
}

// --- Digest --------------------------------------------------------------------------------

Digest Digest::Of(DigestAlgorithm algorithm, std::span<const std::byte> data) {
  Hasher hasher(algorithm);
  hasher.Update(data);
  return hasher.Finish();
}

Digest Digest::Empty(DigestAlgorithm algorithm) {
  Digest digest;
  digest.algorithm = algorithm;
  digest.hash = algorithm == DigestAlgorithm::kSha256 ? kSha256Empty : kBlake3Empty;
  return digest;
}

Result<Digest> Digest::Parse(std::string_view text, DigestAlgorithm bare) {
  if (!KnownAlgorithm(bare)) return InvalidArgument("unknown bare digest algorithm");
  Result<Digest> digest = ParseDigest(text, bare);
  if (!digest.ok()) return About("digest", text, digest.status());
  return digest;
}

Result<Digest> Digest::ParseCanonical(std::string_view text) {
  PACKICE_ASSIGN_OR_RETURN(Digest digest, Parse(text));
  if (digest.ToString() != text) {
    return InvalidArgument("not a digest's canonical text (" + digest.ToString() + ")");
  }
  return digest;
}

Result<Digest> Digest::FromHex(DigestAlgorithm algorithm, std::string_view hex, uint64_t size) {
  if (!KnownAlgorithm(algorithm)) return InvalidArgument("unknown digest algorithm");
  Digest digest;
  digest.algorithm = algorithm;
  digest.size = size;
  PACKICE_RETURN_IF_ERROR(About("digest hash", hex, ParseHash(hex, &digest.hash)));
  PACKICE_RETURN_IF_ERROR(CheckSize(size));
  return digest;
}

std::string Digest::hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kHexDigits, '0');
  for (size_t i = 0; i < hash.size(); ++i) {
    out[2 * i] = kHex[hash[i] >> 4];
    out[2 * i + 1] = kHex[hash[i] & 0xf];
  }
  return out;
}

std::string Digest::ToString() const {
  return std::string(DigestAlgorithmName(algorithm)) + ":" + ToBareString();
}

std::string Digest::ToBareString() const { return hex() + "/" + std::to_string(size); }

// --- Hasher --------------------------------------------------------------------------------

struct Hasher::State {
  DigestAlgorithm algorithm;
  uint64_t size = 0;
  blake3_hasher blake3;  // kBlake3
  EvpMdCtx sha256;       // kSha256
};

Hasher::Hasher(DigestAlgorithm algorithm) : state_(std::make_unique<State>()) {
  state_->algorithm = algorithm;
  switch (algorithm) {
    case DigestAlgorithm::kBlake3:
      blake3_hasher_init(&state_->blake3);
      return;
    case DigestAlgorithm::kSha256:
      state_->sha256 = NewSha256();
      return;
  }
  Die("unknown digest algorithm " + std::to_string(static_cast<int>(algorithm)));
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(std::span<const std::byte> data) {
  state_->size += data.size();
  if (state_->algorithm == DigestAlgorithm::kBlake3) {
    blake3_hasher_update(&state_->blake3, data.data(), data.size());
  } else if (EVP_DigestUpdate(state_->sha256.get(), data.data(), data.size()) != 1) {
    Die("EVP_DigestUpdate failed");
  }
}

Digest Hasher::Finish() {
  Digest digest;
  digest.algorithm = state_->algorithm;
  digest.size = state_->size;
  if (digest.algorithm == DigestAlgorithm::kBlake3) {
    blake3_hasher_finalize(&state_->blake3, digest.hash.data(), digest.hash.size());
  } else if (EVP_DigestFinal_ex(state_->sha256.get(), digest.hash.data(), nullptr) != 1) {
    Die("EVP_DigestFinal_ex failed");
  }
  state_.reset();
  return digest;
}

// --- files and ranges ----------------------------------------------------------------------

Status ContentIsNot(const Digest& got, const Digest& want) {
  return DigestMismatch("the content hashes to " + got.ToString() + ", not " + want.ToString() +
                        "; nothing was stored");
}

Result<Digest> HashFile(const std::string& path, DigestAlgorithm algorithm) {
  Env& env = *Env::Default();
  UniqueFd fd;
  // O_NONBLOCK: opening a FIFO does not wait for a writer (it is refused below).
  if (int err = env.Open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0, &fd); err != 0) {
    return OpenError(path, err);
  }
  struct stat st;
  if (int err = env.Fstat(fd.get(), &st); err != 0) return ErrnoError("fstat '" + path + "'", err);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("'" + path + "' is not a regular file");
  // A hint for the page cache's readahead (files not in memory are read ahead further).
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  Hasher hasher(algorithm);
  PACKICE_RETURN_IF_ERROR(
      HashBytesOf(env, fd.get(), static_cast<uint64_t>(st.st_size), path, &hasher));
  return hasher.Finish();
}

Result<std::pair<uint64_t, uint64_t>> BlobRange::Resolve(uint64_t size) const {
  const std::string of = " of a blob of " + std::to_string(size) + " bytes";
  if (start > size) {
    return OutOfRange("range start " + std::to_string(start) + " is past the end" + of);
  }
  if (!length) return std::pair(start, size - start);
  if (*length > size - start) {
    return OutOfRange("range of " + std::to_string(*length) + " bytes at " + std::to_string(start) +
                      " reaches past the end" + of);
  }
  return std::pair(start, *length);
}

// --- Cas helpers ---------------------------------------------------------------------------

Result<Digest> Cas::Put(std::span<const std::byte> data, DigestAlgorithm algorithm) {
  const Digest digest = Digest::Of(algorithm, data);
  PACKICE_RETURN_IF_ERROR(Store(digest, data));
  return digest;
}

Result<std::vector<Digest>> Cas::FindMissing(std::span<const Digest> digests) {
  std::vector<Digest> missing;
  for (const Digest& digest : digests) {
    Result<uint64_t> size = Check(digest);
    if (size.ok()) continue;
    if (size.status().code() != StatusCode::kNotFound) return size.status();
    missing.push_back(digest);
  }
  return missing;
}

}  // namespace packice
