#include "transport/grpc/reapi/resource_name.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <span>
#include <vector>

namespace packice::rpc {
namespace {

constexpr std::array<std::string_view, 7> kKeywords = {
    "blobs",      "uploads",      "actions",         "actionResults",
    "operations", "capabilities", "compressed-blobs"};

bool IsKeyword(std::string_view s) {
  return std::find(kKeywords.begin(), kKeywords.end(), s) != kKeywords.end();
}

Status Bad(std::string_view name, std::string_view why) {
  return InvalidArgument("resource name '" + std::string(name.substr(0, 200)) +
                         "': " + std::string(why));
}

Result<std::vector<std::string_view>> Split(std::string_view name) {
  if (name.empty()) return Bad(name, "empty");
  if (name.size() > kMaxResourceNameBytes) return Bad(name, "too long");
  std::vector<std::string_view> segments;
  size_t start = 0;
  for (;;) {
    const size_t slash = name.find('/', start);
    std::string_view s =
        name.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (s.empty()) return Bad(name, "an empty path segment");
    if (s == "." || s == "..") return Bad(name, "a '.' or '..' path segment");
    segments.push_back(s);
    if (slash == std::string_view::npos) return segments;
    start = slash + 1;
  }
}

// The instance name of segments[0, end), checked. Errors: kInvalidArgument.
Result<std::string> InstanceOf(std::string_view name, std::span<const std::string_view> segments) {
  std::string instance;
  for (std::string_view s : segments) {
    if (IsKeyword(s)) return Bad(name, "keyword '" + std::string(s) + "' in the instance name");
    if (!instance.empty()) instance += '/';
    instance += s;
  }
  return instance;
}

std::optional<DigestAlgorithm> NamedFunction(std::string_view s) {
  if (s == "blake3") return DigestAlgorithm::kBlake3;
  if (s == "sha256") return DigestAlgorithm::kSha256;
  return std::nullopt;
}

// "{digest_function/}{hash}/{size}" at the start of `rest`; `*used` is how many segments it
// took. Errors: kInvalidArgument.
Result<Digest> DigestAt(std::string_view name, std::span<const std::string_view> rest,
                        size_t* used) {
  DigestAlgorithm algorithm = DigestAlgorithm::kSha256;
  size_t i = 0;
  if (!rest.empty() && rest[0].size() != 2 * Digest::kHashBytes) {
    std::optional<DigestAlgorithm> named = NamedFunction(rest[0]);
    if (!named) return Bad(name, "'" + std::string(rest[0]) + "' is no hash or digest function");
    algorithm = *named;
    i = 1;
  }
  if (rest.size() < i + 2) return Bad(name, "no {hash}/{size} after 'blobs'");
  Result<Digest> d = Digest::Parse(std::string(DigestAlgorithmName(algorithm)) + ":" +
                                   std::string(rest[i]) + "/" + std::string(rest[i + 1]));
  if (!d.ok()) return Bad(name, d.status().message());
  *used = i + 2;
  return d;
}

Status RefuseCompressed(std::string_view name, std::string_view segment) {
  if (segment == "compressed-blobs") {
    return Bad(name, "compressed-blobs: this server supports no compressor");
  }
  return Status::Ok();
}

}  // namespace

std::string BlobResource::UploadKey() const {
  return instance + "/uploads/" + uuid + "/blobs/" + digest.ToString();
}

namespace {

// "{instance/}" and then "blobs/{blake3/}{hash}/{size}" after `middle`.
std::string BlobName(std::string_view instance, std::string_view middle, const Digest& digest) {
  std::string name;
  if (!instance.empty()) name.append(instance).append("/");
  name.append(middle).append("blobs/");
  if (digest.algorithm == DigestAlgorithm::kBlake3) name.append("blake3/");
  return name.append(digest.ToBareString());
}

}  // namespace

std::string ReadResourceName(std::string_view instance, const Digest& digest) {
  return BlobName(instance, "", digest);
}

std::string WriteResourceName(std::string_view instance, std::string_view uuid,
                              const Digest& digest) {
  return BlobName(instance, "uploads/" + std::string(uuid) + "/", digest);
}

Result<BlobResource> ParseReadResource(std::string_view name) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string_view> segments, Split(name));
  auto it = std::find_if(segments.begin(), segments.end(), IsKeyword);
  if (it == segments.end()) return Bad(name, "no 'blobs' segment");
  PACKICE_RETURN_IF_ERROR(RefuseCompressed(name, *it));
  if (*it != "blobs") return Bad(name, "'" + std::string(*it) + "' where 'blobs' belongs");
  const size_t at = it - segments.begin();
  BlobResource r;
  PACKICE_ASSIGN_OR_RETURN(r.instance, InstanceOf(name, std::span(segments).first(at)));
  size_t used = 0;
  std::span<const std::string_view> rest = std::span(segments).subspan(at + 1);
  PACKICE_ASSIGN_OR_RETURN(r.digest, DigestAt(name, rest, &used));
  if (used != rest.size()) return Bad(name, "segments after {hash}/{size}");
  return r;
}

Result<BlobResource> ParseWriteResource(std::string_view name) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string_view> segments, Split(name));
  auto it = std::find_if(segments.begin(), segments.end(), IsKeyword);
  if (it == segments.end() || *it != "uploads") return Bad(name, "no 'uploads' segment");
  const size_t at = it - segments.begin();
  BlobResource r;
  PACKICE_ASSIGN_OR_RETURN(r.instance, InstanceOf(name, std::span(segments).first(at)));
  if (segments.size() < at + 3) return Bad(name, "no {uuid}/blobs/ after 'uploads'");
  const std::string_view uuid = segments[at + 1];
  if (uuid.size() > 128 || IsKeyword(uuid) || !std::all_of(uuid.begin(), uuid.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
      })) {
    return Bad(name, "the uuid is not letters, digits and '-' (at most 128)");
  }
  r.uuid = std::string(uuid);
  PACKICE_RETURN_IF_ERROR(RefuseCompressed(name, segments[at + 2]));
  if (segments[at + 2] != "blobs") return Bad(name, "no 'blobs' after the uuid");
  size_t used = 0;  // what follows {hash}/{size} is metadata the server may ignore: it does
  PACKICE_ASSIGN_OR_RETURN(r.digest, DigestAt(name, std::span(segments).subspan(at + 3), &used));
  return r;
}

}  // namespace packice::rpc
