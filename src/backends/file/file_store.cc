#include "backends/file/file_store.h"

#include <absl/container/flat_hash_map.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "backends/file/file_blob.h"
#include "backends/file/file_header.pb.h"
#include "core/byte_order.h"
#include "core/io.h"
#include "core/mapped_view.h"
#include "core/mutex.h"

namespace packice {
namespace {

constexpr char kMagic[8] = {'P', 'K', 'I', 'C', 'E', 'O', 'B', '1'};
constexpr size_t kPreambleBytes = 32;
constexpr uint32_t kMaxHeaderBytes = 1u << 20;
constexpr char kSuffix[] = ".pko";

disk::ObjectHeader ToHeader(const ObjectInfo& info) {
  disk::ObjectHeader h;
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
  return h;
}

// Where the content of an object like `info` starts: past the largest header its seal can
// write (the seal changes only the size and the expiry).
uint64_t DataOffsetFor(const ObjectInfo& info) {
  disk::ObjectHeader h = ToHeader(info);
  h.set_size(UINT64_MAX);
  h.set_expires_unix_ms(INT64_MAX);
  return RoundUpToPage(kPreambleBytes + h.ByteSizeLong());
}

std::string VersionName(uint64_t version) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%s", static_cast<unsigned long long>(version), kSuffix);
  return buf;
}

std::string ShardName(uint64_t version) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(version & 0xff));
  return buf;
}

}  // namespace

Result<ObjectFileHeader> DecodeObjectFileHeader(std::span<const std::byte> bytes) {
  if (bytes.size() < kPreambleBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return ProtocolError("not a packice object file");
  }
  const uint32_t header_len = GetU32(bytes.data() + 8);
  const uint64_t data_offset = GetU64(bytes.data() + 16);
  const uint64_t checksum = GetU64(bytes.data() + 24);
  if (header_len > kMaxHeaderBytes || kPreambleBytes + header_len > bytes.size()) {
    return ProtocolError("object header is truncated");
  }
  if (data_offset < kPreambleBytes + header_len || data_offset % PageSize() != 0) {
    return ProtocolError("object content offset is invalid");
  }
  const std::byte* header = bytes.data() + kPreambleBytes;
  if (XXH64(header, header_len, 0) != checksum) return ProtocolError("object header checksum");
  disk::ObjectHeader h;
  if (!h.ParseFromArray(header, static_cast<int>(header_len))) {
    return ProtocolError("object header does not parse");
  }
  ObjectFileHeader out;
  out.data_offset = data_offset;
  out.info.key = h.key();
  out.info.version = h.version();
  out.info.size = h.size();
  out.info.state = ObjectState::kSealed;
  for (const auto& e : h.meta()) out.info.meta[e.name()] = e.value();
  out.info.ttl = Duration(h.ttl_ms());
  out.info.created_unix_ms = h.created_unix_ms();
  out.info.expires_unix_ms = h.expires_unix_ms();
  if (out.info.ttl.count() < 0 || out.info.size > (UINT64_MAX - data_offset)) {
    return ProtocolError("object header has impossible values");
  }
  return out;
}

class FileStore::State {
 public:
  explicit State(FileStoreOptions options)
      : options_(std::move(options)),
        space_(std::make_shared<FileSpace>(options_.env, options_.dir + "/tmp",
                                           options_.capacity_bytes)) {}

  const FileStoreOptions& options() const { return options_; }
  Env& env() const { return *options_.env; }
  const std::shared_ptr<FileSpace>& space() const { return space_; }
  std::string TmpPath(uint64_t version) const {
    return options_.dir + "/tmp/" + VersionName(version);
  }
  std::string ShardDir(uint64_t version) const {
    return options_.dir + "/objects/" + ShardName(version);
  }
  std::string FinalPath(uint64_t version) const {
    return ShardDir(version) + "/" + VersionName(version);
  }

  UniqueFd lock_fd;

 private:
  const FileStoreOptions options_;
  const std::shared_ptr<FileSpace> space_;
};

namespace {

// The preamble and checksummed header of a sealed object file (docs/file_format.md).
std::string EncodeHead(const ObjectInfo& info, uint64_t data_offset) {
  const std::string header = ToHeader(info).SerializeAsString();
  std::string head(kPreambleBytes, '\0');
  auto* p = reinterpret_cast<std::byte*>(head.data());
  std::memcpy(p, kMagic, sizeof kMagic);
  PutU32(p + 8, static_cast<uint32_t>(header.size()));
  PutU64(p + 16, data_offset);
  PutU64(p + 24, XXH64(header.data(), header.size(), 0));
  head += header;
  return head;
}

}  // namespace

Result<std::unique_ptr<FileStore>> FileStore::Open(FileStoreOptions options) {
  if (options.dir.empty()) return InvalidArgument("file store needs a directory");
  if (!options.clock) options.clock = Clock::System();
  if (!options.env) options.env = Env::Default();
  Env& env = *options.env;
  auto state = std::make_shared<State>(options);
  PACKICE_ASSIGN_OR_RETURN(state->lock_fd,
                           OpenStoreDir(env, options.dir, {"tmp", "objects"}, options.sync));
  bool made = false;
  for (uint64_t shard = 0; shard < 256; ++shard) {
    PACKICE_ASSIGN_OR_RETURN(bool m, MakeDirIfMissing(env, state->ShardDir(shard), 0700));
    made |= m;
  }
  if (made && options.sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env, options.dir + "/objects"));
  return std::unique_ptr<FileStore>(new FileStore(std::move(state)));
}

FileStore::FileStore(std::shared_ptr<State> state) : state_(std::move(state)) {}
FileStore::~FileStore() = default;

uint64_t FileStore::capacity_bytes() const { return state_->options().capacity_bytes; }

uint64_t FileStore::ChargeFor(uint64_t size) const {
  return size > UINT64_MAX - 2 * PageSize() ? UINT64_MAX : RoundUpToPage(size) + PageSize();
}

Result<std::shared_ptr<Blob>> FileStore::Allocate(const ObjectInfo& info) {
  if (ChargeFor(info.size) > capacity_bytes()) {
    return OutOfCapacity("object of " + std::to_string(info.size) +
                         " bytes exceeds the disk capacity of " + std::to_string(capacity_bytes()));
  }
  const uint64_t data_offset = DataOffsetFor(info);
  const uint64_t charge = data_offset + RoundUpToPage(info.size);
  PACKICE_RETURN_IF_ERROR(state_->space()->Charge(charge));
  const std::string path = state_->TmpPath(info.version);
  Env& env = state_->env();
  UniqueFd fd;
  int err = env.Open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd);
  if (err == 0) err = env.Truncate(fd.get(), data_offset + info.size);
  if (err != 0) {
    if (fd.valid()) (void)env.Unlink(path);
    state_->space()->Uncharge(charge);
    return ErrnoError("create " + path, err);
  }
  return std::shared_ptr<Blob>(std::make_shared<FileBlob>(state_->space(), path, std::move(fd),
                                                          data_offset, info.size, charge));
}

Status FileStore::Commit(Blob& blob, const ObjectInfo& info) {
  auto& file = static_cast<FileBlob&>(blob);
  const std::string head = EncodeHead(info, file.data_offset());
  return file.Commit(std::as_bytes(std::span(head)), info.size, state_->FinalPath(info.version),
                     state_->ShardDir(info.version), state_->options().sync);
}

void FileStore::Remove(Blob& blob) { static_cast<FileBlob&>(blob).Doom(); }

namespace {

// One object file found at start-up, read and checked.
struct ScannedFile {
  std::string path;
  std::string name;
  Result<ObjectFileHeader> header = ProtocolError("unread");
};

// Reads the preamble and header of the object file at `path`: one page, more only for a large
// header.
Result<ObjectFileHeader> ReadObjectFileHeader(Env& env, const std::string& path) {
  UniqueFd fd;
  int err = env.Open(path, O_RDONLY | O_NOATIME, 0, &fd);
  if (err != 0) err = env.Open(path, O_RDONLY, 0, &fd);  // not our file
  struct stat st {};
  if (err == 0) err = env.Fstat(fd.get(), &st);
  if (err != 0) return ErrnoError("open " + path, err);
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  std::vector<std::byte> buf(std::min<uint64_t>(file_size, PageSize()));
  PACKICE_RETURN_IF_ERROR(ReadFully(env, fd.get(), buf, 0));
  if (buf.size() >= kPreambleBytes) {
    const uint64_t want = kPreambleBytes + std::min(GetU32(buf.data() + 8), kMaxHeaderBytes);
    if (want > buf.size() && want <= file_size) {
      buf.resize(want);
      PACKICE_RETURN_IF_ERROR(ReadFully(env, fd.get(), buf, 0));
    }
  }
  PACKICE_ASSIGN_OR_RETURN(ObjectFileHeader header, DecodeObjectFileHeader(buf));
  if (header.data_offset + header.info.size > file_size) {
    return ProtocolError("content shorter than the header says");
  }
  return header;
}

}  // namespace

Result<std::vector<StoredObject>> FileStore::Recover() {
  const std::string& dir = state_->options().dir;
  Env& env = state_->env();
  for (const std::string& name : NamesWithSuffix(env, dir + "/tmp", kSuffix)) {
    (void)env.Unlink(dir + "/tmp/" + name);  // never sealed: as if never created
  }
  // Reading headers is small random I/O: several threads keep the disk's queue full.
  constexpr int kThreads = 16;
  std::vector<std::vector<ScannedFile>> scanned(kThreads);
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([this, t, &env, &scanned] {
        for (uint64_t shard = t; shard < 256; shard += kThreads) {
          const std::string shard_dir = state_->ShardDir(shard);
          for (std::string& name : NamesWithSuffix(env, shard_dir, kSuffix)) {
            ScannedFile f{shard_dir + "/" + name, std::move(name)};
            f.header = ReadObjectFileHeader(env, f.path);
            scanned[t].push_back(std::move(f));
          }
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const int64_t now_ms = state_->options().clock->UnixMillis();
  absl::flat_hash_map<std::string, StoredObject> newest;  // by key
  for (auto& files : scanned) {
    for (ScannedFile& f : files) {
      if (!f.header.ok()) {
        spdlog::warn("event=corrupt_object file={} error=\"{}\" action=moved_to_corrupt", f.path,
                     f.header.status().ToString());
        MakeDirIfMissing(env, dir + "/corrupt", 0700).IgnoreError();
        (void)env.Rename(f.path, dir + "/corrupt/" + f.name);
        continue;
      }
      ObjectInfo& info = f.header->info;
      if (info.expires_unix_ms != 0 && info.expires_unix_ms <= now_ms) {
        (void)env.Unlink(f.path);
        continue;
      }
      const uint64_t data_offset = f.header->data_offset;
      const uint64_t charge = data_offset + RoundUpToPage(info.size);
      state_->space()->ChargeUnchecked(charge);  // what is on disk is there: count it if over
      auto blob = std::make_shared<FileBlob>(state_->space(), std::move(f.path), UniqueFd(),
                                             data_offset, info.size, charge);
      auto [it, inserted] = newest.try_emplace(info.key);
      if (!inserted && it->second.info.version > info.version) {
        blob->Doom();  // left by a crash between a seal's rename and its rebind
        continue;
      }
      if (!inserted) static_cast<FileBlob&>(*it->second.blob).Doom();
      info.tier = "disk";
      it->second = StoredObject{std::move(info), std::move(blob)};
    }
  }
  std::vector<StoredObject> out;
  out.reserve(newest.size());
  for (auto& [key, obj] : newest) out.push_back(std::move(obj));
  std::sort(out.begin(), out.end(),
            [](const StoredObject& a, const StoredObject& b) { return a.info.key < b.info.key; });
  return out;
}

StoreStats FileStore::GetStats() const {
  return StoreStats{state_->space()->used(), 0, state_->options().capacity_bytes};
}

}  // namespace packice
