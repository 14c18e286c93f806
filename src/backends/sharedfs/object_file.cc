#include "backends/sharedfs/object_file.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "backends/sharedfs/sharedfs_header.pb.h"
#include "core/byte_order.h"
#include "core/io.h"

namespace packice {
namespace {

constexpr char kMagic[8] = {'P', 'K', 'I', 'C', 'E', 'S', 'F', '1'};
// The checksum (bytes 8..16) covers the rest of the preamble and the header.
constexpr size_t kChecksummedFrom = 16;
// Most headers fit in one read of this many bytes.
constexpr size_t kFirstReadBytes = 4096;

sharedfs::ObjectHeader ToProto(const SharedObjectHeader& header) {
  const ObjectInfo& info = header.info;
  sharedfs::ObjectHeader h;
  h.set_state(info.state == ObjectState::kSealed ? sharedfs::SEALED : sharedfs::CREATING);
  h.set_key(info.key);
  h.set_version(info.version);
  h.set_size(info.size);
  for (const auto& [k, v] : info.meta) {
    auto* e = h.add_meta();
    e->set_name(k);
    e->set_value(v);
  }
  h.set_ttl_ms(info.ttl.count());
  h.set_created_unix_ms(info.created_unix_ms);
  h.set_expires_unix_ms(info.expires_unix_ms);
  h.set_writer(header.writer);
  return h;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

uint64_t SharedDataOffsetFor(const ObjectInfo& info, std::string_view writer) {
  SharedObjectHeader largest{info, std::string(writer), 0};
  largest.info.state = ObjectState::kSealed;
  largest.info.size = UINT64_MAX;
  largest.info.expires_unix_ms = INT64_MAX;
  return RoundUpToPage(kSharedPreambleBytes + ToProto(largest).ByteSizeLong());
}

Result<std::string> EncodeSharedObjectHeader(const SharedObjectHeader& header) {
  const std::string body = ToProto(header).SerializeAsString();
  if (body.size() > kSharedMaxHeaderBytes ||
      kSharedPreambleBytes + body.size() > header.data_offset) {
    return Internal("object header outgrew its reserved space");
  }
  std::string out(kSharedPreambleBytes, '\0');
  out += body;
  auto* p = reinterpret_cast<std::byte*>(out.data());
  std::memcpy(p, kMagic, sizeof kMagic);
  PutU32(p + 16, static_cast<uint32_t>(body.size()));
  PutU64(p + 24, header.data_offset);
  // The checksum covers everything after it: the lengths, the content offset and the header.
  PutU64(p + 8, XXH64(p + kChecksummedFrom, out.size() - kChecksummedFrom, 0));
  return out;
}

Result<SharedObjectHeader> DecodeSharedObjectHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kSharedPreambleBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return ProtocolError("not a packice shared object file");
  }
  const uint64_t checksum = GetU64(bytes.data() + 8);
  const uint32_t header_len = GetU32(bytes.data() + 16);
  const uint32_t flags = GetU32(bytes.data() + 20);
  const uint64_t data_offset = GetU64(bytes.data() + 24);
  if (header_len > kSharedMaxHeaderBytes || kSharedPreambleBytes + header_len > bytes.size()) {
    return ProtocolError("object header is truncated");
  }
  if (XXH64(bytes.data() + kChecksummedFrom, kSharedPreambleBytes + header_len - kChecksummedFrom,
            0) != checksum) {
    return ProtocolError("object header checksum");
  }
  if (flags != 0) return ProtocolError("object preamble has unknown flags");
  if (data_offset < kSharedPreambleBytes + header_len || data_offset % PageSize() != 0 ||
      data_offset > RoundUpToPage(kSharedPreambleBytes + kSharedMaxHeaderBytes)) {
    return ProtocolError("object content offset is invalid");
  }
  const std::byte* body = bytes.data() + kSharedPreambleBytes;
  sharedfs::ObjectHeader h;
  if (!h.ParseFromArray(body, static_cast<int>(header_len))) {
    return ProtocolError("object header does not parse");
  }
  SharedObjectHeader out;
  out.data_offset = data_offset;
  out.writer = h.writer();
  ObjectInfo& info = out.info;
  info.key = h.key();
  info.version = h.version();
  info.size = h.size();
  info.state = h.state() == sharedfs::SEALED ? ObjectState::kSealed : ObjectState::kCreating;
  for (const auto& e : h.meta()) info.meta[e.name()] = e.value();
  info.ttl = Duration(h.ttl_ms());
  info.created_unix_ms = h.created_unix_ms();
  info.expires_unix_ms = h.expires_unix_ms();
  if (h.state() != sharedfs::SEALED && h.state() != sharedfs::CREATING) {
    return ProtocolError("object header has an unknown state");
  }
  if (info.key.empty() || info.ttl.count() < 0 || info.size > UINT64_MAX - data_offset) {
    return ProtocolError("object header has impossible values");
  }
  return out;
}

Result<SharedObjectHeader> ReadSharedObjectHeader(Env& env, int fd) {
  struct stat st {};
  if (int err = env.Fstat(fd, &st); err != 0) return ErrnoError("fstat object file", err);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::vector<std::byte> buf(std::min<uint64_t>(file_size, kFirstReadBytes));
  PACKICE_RETURN_IF_ERROR(ReadFully(env, fd, buf, 0));
  if (buf.size() >= kSharedPreambleBytes) {
    // A header longer than the first read: read it whole.
    const uint64_t need = kSharedPreambleBytes + GetU32(buf.data() + 16);
    if (need > buf.size() && need <= kSharedPreambleBytes + kSharedMaxHeaderBytes &&
        need <= file_size) {
      buf.resize(need);
      PACKICE_RETURN_IF_ERROR(ReadFully(env, fd, buf, 0));
    }
  }
  PACKICE_ASSIGN_OR_RETURN(SharedObjectHeader header, DecodeSharedObjectHeader(buf));
  if (header.data_offset + header.info.size > file_size) {
    return ProtocolError("object content is shorter than its header says");
  }
  return header;
}

SharedObjectName SharedNameForKey(std::string_view key) {
  const XXH128_hash_t h = XXH3_128bits(key.data(), key.size());
  char stem[33];
  std::snprintf(stem, sizeof stem, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  SharedObjectName name;
  name.stem = stem;
  name.shard = "objects/" + name.stem.substr(0, 2);
  name.stripe = static_cast<uint32_t>(h.low64 % kSharedLockStripes);
  return name;
}

bool SharedStripeForStem(std::string_view stem, uint32_t* stripe) {
  if (stem.size() != 32) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < stem.size(); ++i) {
    const int d = HexDigit(stem[i]);
    if (d < 0) return false;
    if (i >= 28) v = (v << 4) | static_cast<uint32_t>(d);
  }
  *stripe = v % kSharedLockStripes;
  return true;
}

}  // namespace packice
