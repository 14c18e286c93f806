// Content-addressed storage: blobs named by the digest of their content (seed 004, Zako CAS).
//
// A Digest is a hash and a size. BLAKE3 is the default; SHA-256 is there for the clients that
// expect it (REAPI and Bazel). Text forms, parsed strictly (lower-case hex of exactly 64
// digits, a decimal size without sign, leading zeros or spaces):
//
//   blake3:<hex>/<size>     sha256:<hex>/<size>     <hex>/<size>  (REAPI's form: SHA-256)
//
//   Digest d = Digest::Of(DigestAlgorithm::kBlake3, bytes);
//   cas.Store(d, bytes);                       // idempotent; verified; atomic
//   Result<CasBlob> part = cas.Fetch(d, BlobRange::Of(100, 50));
//
// The empty blob of each algorithm always exists. Errors have codes of their own: a store whose
// content is not its digest is kDigestMismatch (and stores nothing); a range past the end of
// the blob is kOutOfRange.
#ifndef PACKICE_CAS_H_
#define PACKICE_CAS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/status.h"

namespace packice {

enum class DigestAlgorithm : uint8_t {
  kBlake3 = 1,
  kSha256 = 2,
};

// "blake3" or "sha256" ("unknown" for a value that is neither).
std::string_view DigestAlgorithmName(DigestAlgorithm algorithm);
// The algorithm of a name DigestAlgorithmName gives. Errors: kInvalidArgument.
Result<DigestAlgorithm> ParseDigestAlgorithm(std::string_view name);

struct Digest {
  static constexpr size_t kHashBytes = 32;  // both algorithms give 256 bits

  DigestAlgorithm algorithm = DigestAlgorithm::kBlake3;
  std::array<uint8_t, kHashBytes> hash{};
  uint64_t size = 0;

  // The digest of `data`.
  static Digest Of(DigestAlgorithm algorithm, std::span<const std::byte> data);
  // The digest of the empty blob.
  static Digest Empty(DigestAlgorithm algorithm);
  // Parses any text form above; the bare "<hex>/<size>" is SHA-256 unless `bare` says
  // otherwise. The size is at most 2^63 - 1. Errors: kInvalidArgument, naming what is wrong and
  // quoting about 80 characters of `text` at most (other bytes than printable ASCII as \xNN).
  static Result<Digest> Parse(std::string_view text,
                              DigestAlgorithm bare = DigestAlgorithm::kSha256);
  // Parses only the canonical text ToString gives (the form object keys of blobs use).
  // Errors: kInvalidArgument.
  static Result<Digest> ParseCanonical(std::string_view text);
  // A hash given as 64 lower-case hex digits and a size (REAPI's Digest message). Errors as
  // Parse: kInvalidArgument for the hex or a size above 2^63 - 1.
  static Result<Digest> FromHex(DigestAlgorithm algorithm, std::string_view hex, uint64_t size);

  std::string hex() const;           // 64 lower-case hex digits
  std::string ToString() const;      // "blake3:<hex>/<size>"
  std::string ToBareString() const;  // "<hex>/<size>"
  bool empty_blob() const { return *this == Empty(algorithm); }

  friend bool operator==(const Digest&, const Digest&) = default;
};

// The kDigestMismatch error of content that hashes to `got` where `want` was expected.
Status ContentIsNot(const Digest& got, const Digest& want);

// Hashes bytes given in pieces: the digest is that of their concatenation, however they are
// split. Not thread-safe; cheap to create (one allocation).
class Hasher {
 public:
  // REQUIRES: `algorithm` is one of the enumerators (the process aborts otherwise).
  explicit Hasher(DigestAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  // Adds `data`. REQUIRES: not finished, not moved from.
  void Update(std::span<const std::byte> data);
  // The digest of everything given so far (its size is their total). The hasher is spent: it
  // may only be destroyed or assigned to. REQUIRES: not finished, not moved from.
  Digest Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The digest of the file at `path`: of the size fstat(2) gives at the start, read with
// pread(2) through a buffer of 256 KiB (faster than a mapping, see src/core/digest.cc). Errors:
// kNotFound (no such file), kInvalidArgument (not a regular file: a directory, FIFO or device;
// a FIFO is not waited on), kInternal (a file that shrinks while it is hashed, any other
// failure; errno in the message). Thread-safe.
Result<Digest> HashFile(const std::string& path, DigestAlgorithm algorithm);

// Which bytes of a blob a read wants: `length` bytes from `start`, or from `start` to the end.
struct BlobRange {
  uint64_t start = 0;
  std::optional<uint64_t> length;  // nullopt: to the end

  static BlobRange Full() { return {}; }
  static BlobRange Of(uint64_t start, std::optional<uint64_t> length) { return {start, length}; }
  // The offset and length of this range within a blob of `size` bytes. A range that starts past
  // the end, or whose length reaches past it, is kOutOfRange; a start equal to the size with
  // no length (or length 0) is the empty range at the end.
  Result<std::pair<uint64_t, uint64_t>> Resolve(uint64_t size) const;
};

// Bytes read from a CAS: a range of one blob, valid while the CasBlob lives. On the node's
// machine they are a mapped view of the stored blob under a read lease (no copy); elsewhere,
// bytes streamed into memory the CasBlob owns.
struct CasBlob {
  Digest digest;
  uint64_t offset = 0;               // where `bytes` starts in the blob
  std::span<const std::byte> bytes;  // the range asked for
  std::shared_ptr<const void> holder;
};

// A content-addressed store. Thread safety: implementations are safe for concurrent use.
class Cas {
 public:
  virtual ~Cas() = default;

  // Stores `data` under `digest`, once: a blob already there is not written again. Atomic (a
  // reader never sees part of a blob; a crash leaves it whole or absent). Errors:
  // kDigestMismatch (the content is not the digest; nothing is stored), kOutOfCapacity,
  // kInternal.
  virtual Status Store(const Digest& digest, std::span<const std::byte> data) = 0;
  // Stores `data` under the digest of its content, which it returns. Errors as Store.
  Result<Digest> Put(std::span<const std::byte> data,
                     DigestAlgorithm algorithm = DigestAlgorithm::kBlake3);
  // The blob's size if it is stored. Errors: kNotFound.
  virtual Result<uint64_t> Check(const Digest& digest) = 0;
  bool Contains(const Digest& digest) { return Check(digest).ok(); }
  // The digests of `digests` that are not stored, in their order (Check of each one). Errors:
  // the first error of Check other than kNotFound.
  virtual Result<std::vector<Digest>> FindMissing(std::span<const Digest> digests);
  // The bytes of `range` of the blob. Errors: kNotFound, kOutOfRange, kUnavailable, kInternal.
  virtual Result<CasBlob> Fetch(const Digest& digest, BlobRange range = BlobRange::Full()) = 0;
  // A file that holds exactly the blob's bytes, when it is on this machine's local store.
  virtual std::optional<std::string> LocalPath(const Digest& digest) = 0;
};

}  // namespace packice

#endif  // PACKICE_CAS_H_
