// TEMPORARY — DELETE AT MERGE. A minimal stand-in for src/core/digest.cc (Digest, Hasher,
// BlobRange, the Cas defaults of packice/cas.h), which another branch implements. Only the test
// target reapi_test links it, so that the REAPI services can be built and tested before the real
// implementation lands on main; when it does, remove this file and its line in CMakeLists.txt.
//
// SHA-256 is OpenSSL's. BLAKE3 is not implemented: hashing with it aborts (the tests hash only
// SHA-256); its empty-blob digest is the published constant.
#include <openssl/evp.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "packice/cas.h"

namespace packice {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

// BLAKE3 of no bytes.
constexpr std::string_view kEmptyBlake3 =
    "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

Result<uint64_t> ParseSize(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) {
    return InvalidArgument("digest size '" + std::string(text) + "' is not a plain decimal");
  }
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > (uint64_t{1} << 63) - 1) {
    return InvalidArgument("digest size '" + std::string(text) + "' is not a size");
  }
  return v;
}

}  // namespace

std::string_view DigestAlgorithmName(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::kSha256 ? "sha256" : "blake3";
}

Result<DigestAlgorithm> ParseDigestAlgorithm(std::string_view name) {
  if (name == "blake3") return DigestAlgorithm::kBlake3;
  if (name == "sha256") return DigestAlgorithm::kSha256;
  return InvalidArgument("unknown digest algorithm '" + std::string(name) + "'");
}

struct Hasher::State {
  DigestAlgorithm algorithm;
  EVP_MD_CTX* ctx = nullptr;
  uint64_t size = 0;
};

Hasher::Hasher(DigestAlgorithm algorithm) : state_(std::make_unique<State>()) {
  if (algorithm != DigestAlgorithm::kSha256) {
    std::fprintf(stderr, "digest_stub_for_reapi: BLAKE3 hashing is not implemented\n");
    std::abort();
  }
  state_->algorithm = algorithm;
  state_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr);
}

Hasher::~Hasher() {
  if (state_ != nullptr) EVP_MD_CTX_free(state_->ctx);
}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&& other) noexcept {
  if (state_ != nullptr) EVP_MD_CTX_free(state_->ctx);
  state_ = std::move(other.state_);
  return *this;
}

void Hasher::Update(std::span<const std::byte> data) {
  EVP_DigestUpdate(state_->ctx, data.data(), data.size());
  state_->size += data.size();
}

Digest Hasher::Finish() {
  Digest d;
  d.algorithm = state_->algorithm;
  d.size = state_->size;
  unsigned int n = 0;
  EVP_DigestFinal_ex(state_->ctx, d.hash.data(), &n);
  return d;
}

Digest Digest::Of(DigestAlgorithm algorithm, std::span<const std::byte> data) {
  if (algorithm == DigestAlgorithm::kBlake3 && data.empty()) return Empty(algorithm);
  Hasher h(algorithm);
  h.Update(data);
  return h.Finish();
}

Digest Digest::Empty(DigestAlgorithm algorithm) {
  if (algorithm == DigestAlgorithm::kBlake3) return *FromHex(algorithm, kEmptyBlake3, 0);
  Hasher h(algorithm);
  return h.Finish();
}

Result<Digest> Digest::FromHex(DigestAlgorithm algorithm, std::string_view hex, uint64_t size) {
  if (hex.size() != 2 * kHashBytes) {
    return InvalidArgument("digest hash of " + std::to_string(hex.size()) +
                           " characters, not 64 hex digits");
  }
  if (size > (uint64_t{1} << 63) - 1) return InvalidArgument("digest size over 2^63 - 1");
  Digest d;
  d.algorithm = algorithm;
  d.size = size;
  for (size_t i = 0; i < kHashBytes; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgument("digest hash is not lower-case hex");
    d.hash[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return d;
}

Result<Digest> Digest::Parse(std::string_view text, DigestAlgorithm bare) {
  DigestAlgorithm algorithm = bare;
  if (size_t colon = text.find(':'); colon != std::string_view::npos) {
    PACKICE_ASSIGN_OR_RETURN(algorithm, ParseDigestAlgorithm(text.substr(0, colon)));
    text.remove_prefix(colon + 1);
  }
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return InvalidArgument("digest without '/<size>'");
  PACKICE_ASSIGN_OR_RETURN(uint64_t size, ParseSize(text.substr(slash + 1)));
  return FromHex(algorithm, text.substr(0, slash), size);
}

std::string Digest::hex() const {
  std::string out(2 * kHashBytes, '0');
  for (size_t i = 0; i < kHashBytes; ++i) {
    out[2 * i] = kHexDigits[hash[i] >> 4];
    out[2 * i + 1] = kHexDigits[hash[i] & 15];
  }
  return out;
}

std::string Digest::ToBareString() const { return hex() + "/" + std::to_string(size); }

std::string Digest::ToString() const {
  return std::string(DigestAlgorithmName(algorithm)) + ":" + ToBareString();
}

Result<std::pair<uint64_t, uint64_t>> BlobRange::Resolve(uint64_t size) const {
  if (start > size) return OutOfRange("range starts past the blob's end");
  if (length && *length > size - start) return OutOfRange("range ends past the blob's end");
  return std::pair<uint64_t, uint64_t>(start, length.value_or(size - start));
}

Result<Digest> Cas::Put(std::span<const std::byte> data, DigestAlgorithm algorithm) {
  Digest d = Digest::Of(algorithm, data);
  PACKICE_RETURN_IF_ERROR(Store(d, data));
  return d;
}

Result<std::vector<Digest>> Cas::FindMissing(std::span<const Digest> digests) {
  std::vector<Digest> missing;
  for (const Digest& d : digests) {
    if (!Contains(d)) missing.push_back(d);
  }
  return missing;
}

}  // namespace packice
