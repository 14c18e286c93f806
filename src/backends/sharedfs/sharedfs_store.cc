#include "backends/sharedfs/sharedfs_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "core/io.h"
#include "core/validate.h"

namespace packice {
namespace {

constexpr char kSealedSuffix[] = ".pks";
constexpr char kCreatingSuffix[] = ".pkc";
constexpr char kTrashSuffix[] = ".pkt";
constexpr mode_t kFileMode = 0660;
constexpr mode_t kSealedMode = 0440;
constexpr mode_t kDirMode = 0770;
// How long a key operation waits for another holder of the key's stripe lock. Holders do a
// few renames or unlinks, so only a stopped or partitioned process makes it run out.
constexpr auto kStripeLockWait = std::chrono::seconds(10);

std::string DefaultWriterId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return std::string(host) + ":" + std::to_string(getpid());
}

struct flock WholeFile(short type) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  return l;  // l_start = l_len = 0: the whole file; l_pid must be 0 for OFD locks
}

// Takes (or converts to) lock `type` on the whole file without waiting. False when another
// open file holds a conflicting lock.
Result<bool> TryLockFile(int fd, short type) {
  struct flock l = WholeFile(type);
  while (fcntl(fd, F_OFD_SETLK, &l) != 0) {
    if (errno == EAGAIN || errno == EACCES) return false;
    if (errno != EINTR) return ErrnoError("fcntl(F_OFD_SETLK)", errno);
  }
  return true;
}

// Whether some other open file holds any lock on the file (the writer's write lock, or a
// reader's read lock).
Result<bool> LockedElsewhere(int fd) {
  struct flock l = WholeFile(F_WRLCK);
  if (fcntl(fd, F_OFD_GETLK, &l) != 0) return ErrnoError("fcntl(F_OFD_GETLK)", errno);
  return l.l_type != F_UNLCK;
}

int64_t MtimeMillis(const struct stat& st) {
  return int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

std::string ShardName(unsigned shard) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "objects/%02x", shard);
  return buf;
}

bool Expired(const ObjectInfo& info, int64_t now_ms) {
  return info.expires_unix_ms != 0 && info.expires_unix_ms <= now_ms;
}

Status CheckRange(uint64_t offset, uint64_t length, uint64_t size) {
  if (offset > size || length > size - offset) {
    return InvalidArgument("range " + std::to_string(offset) + "+" + std::to_string(length) +
                           " is outside the object's " + std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

// Reserves `bytes` for the file: a full filesystem fails the create, not a client's write into
// a mapping (SIGBUS). Filesystems without fallocate get a sparse file.
Status Reserve(Env& env, int fd, uint64_t bytes, const std::string& path) {
  const int err = env.Allocate(fd, bytes);
  if (err == 0) return Status::Ok();
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    return OutOfCapacity("no room for " + std::to_string(bytes) + " bytes in " + path + ": " +
                         std::strerror(err));
  }
  if (err != EOPNOTSUPP && err != ENOSYS && err != EINVAL) {
    return ErrnoError("fallocate " + path, err);
  }
  if (int e = env.Truncate(fd, bytes); e != 0) return ErrnoError("truncate " + path, e);
  return Status::Ok();
}

}  // namespace

// --- CreatingObjectFile ------------------------------------------------------------------------

CreatingObjectFile::CreatingObjectFile(std::shared_ptr<Env> env, SharedObjectName name,
                                       std::string path, UniqueFd fd, uint64_t data_offset,
                                       ObjectInfo info, bool exclusive)
    : env_(std::move(env)),
      name_(std::move(name)),
      path_(std::move(path)),
      data_offset_(data_offset),
      exclusive_(exclusive),
      fd_(std::move(fd)),
      info_(std::move(info)) {}

uint64_t CreatingObjectFile::size() const {
  MutexLock lock(&mu_);
  return info_.size;
}

ObjectInfo CreatingObjectFile::info() const {
  MutexLock lock(&mu_);
  return info_;
}

Status CreatingObjectFile::Write(uint64_t offset, std::span<const std::byte> data) {
  MutexLock lock(&mu_);
  if (phase_ != Phase::kWriting) return WrongState("object '" + info_.key + "' is not CREATING");
  PACKICE_RETURN_IF_ERROR(CheckRange(offset, data.size(), info_.size));
  return WriteFully(*env_, fd_.get(), data, data_offset_ + offset, "write " + path_);
}

Status CreatingObjectFile::Read(uint64_t offset, std::span<std::byte> out) {
  MutexLock lock(&mu_);
  if (!fd_.valid()) return WrongState("object '" + info_.key + "' was discarded");
  PACKICE_RETURN_IF_ERROR(CheckRange(offset, out.size(), info_.size));
  return ReadFully(*env_, fd_.get(), out, data_offset_ + offset);
}

Result<std::shared_ptr<BlobView>> CreatingObjectFile::OpenView(LeaseMode mode) {
  MutexLock lock(&mu_);
  if (mode != LeaseMode::kCreate || phase_ != Phase::kWriting) {
    return WrongState("object '" + info_.key + "' is not CREATING");
  }
  return env_->Map(fd_.get(), data_offset_, RoundUpToPage(info_.size), info_.size,
                   /*writable=*/true, /*populate=*/false);
}

Result<BlobExport> CreatingObjectFile::Export(LeaseMode mode) {
  MutexLock lock(&mu_);
  if (mode != LeaseMode::kCreate || phase_ != Phase::kWriting) {
    return WrongState("object '" + info_.key + "' is not CREATING");
  }
  // Not a dup: a dup would share this open file and its write lock, and a client still mapping
  // it would keep the lock after this process died, hiding that the writer is gone.
  const std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
  BlobExport ex;
  ex.kind = BlobExport::Kind::kFd;
  if (int err = env_->Open(self, O_RDWR, 0, &ex.fd); err != 0) {
    return ErrnoError("reopen " + path_, err);
  }
  ex.offset = data_offset_;
  ex.map_size = RoundUpToPage(info_.size);
  return ex;
}

// --- SealedObjectFile --------------------------------------------------------------------------

Status SealedObjectFile::Write(uint64_t, std::span<const std::byte>) {
  return WrongState("object '" + info_.key + "' is sealed");
}

Status SealedObjectFile::Read(uint64_t offset, std::span<std::byte> out) {
  PACKICE_RETURN_IF_ERROR(CheckRange(offset, out.size(), info_.size));
  return ReadFully(*env_, fd_.get(), out, data_offset_ + offset);
}

Result<std::shared_ptr<BlobView>> SealedObjectFile::OpenView(LeaseMode mode) {
  if (mode != LeaseMode::kRead) return WrongState("object '" + info_.key + "' is sealed");
  return env_->Map(fd_.get(), data_offset_, RoundUpToPage(info_.size), info_.size,
                   /*writable=*/false, /*populate=*/false);
}

Result<BlobExport> SealedObjectFile::Export(LeaseMode mode) {
  if (mode != LeaseMode::kRead) return WrongState("object '" + info_.key + "' is sealed");
  BlobExport ex;
  ex.kind = BlobExport::Kind::kFd;
  ex.fd = UniqueFd(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!ex.fd.valid()) return ErrnoError("dup", errno);
  ex.offset = data_offset_;
  ex.map_size = RoundUpToPage(info_.size);
  return ex;
}

// --- SharedFSStore -----------------------------------------------------------------------------

Result<std::unique_ptr<SharedFSStore>> SharedFSStore::Open(SharedFSStoreOptions options) {
  if (options.dir.empty()) return InvalidArgument("the shared store needs a directory");
  if (!options.clock) options.clock = Clock::System();
  if (!options.env) options.env = Env::Default();
  Env& env = *options.env;
  // New directories are synced into their parents, so that a crash cannot take them and the
  // objects sealed in them.
  PACKICE_RETURN_IF_ERROR(MakeDirs(env, options.dir, kDirMode, options.sync));
  struct stat st {};
  if (env.Stat(options.dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgument(options.dir + " is not a directory");
  }
  bool made = false;
  for (const char* sub : {"/objects", "/trash"}) {  // shards are made on first use
    PACKICE_ASSIGN_OR_RETURN(bool m, MakeDirIfMissing(env, options.dir + sub, kDirMode));
    made |= m;
  }
  if (made && options.sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env, options.dir));
  const std::string locks_path = options.dir + "/LOCKS";
  UniqueFd locks;
  if (int err = env.Open(locks_path, O_RDWR | O_CREAT, kFileMode, &locks); err != 0) {
    return ErrnoError("open " + locks_path, err);
  }
  // A lock past the stripes proves that the filesystem has OFD locks.
  struct flock probe {};
  probe.l_type = F_RDLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = kSharedLockStripes;
  probe.l_len = 1;
  if (fcntl(locks.get(), F_OFD_SETLK, &probe) != 0) {
    return ErrnoError("fcntl locks on " + locks_path + " (the filesystem needs them)", errno);
  }
  probe.l_type = F_UNLCK;
  fcntl(locks.get(), F_OFD_SETLK, &probe);
  std::string writer = options.writer_id.empty() ? DefaultWriterId() : options.writer_id;
  return std::unique_ptr<SharedFSStore>(
      new SharedFSStore(std::move(options), std::move(writer), std::move(locks)));
}

SharedFSStore::SharedFSStore(SharedFSStoreOptions options, std::string writer_id, UniqueFd locks)
    : options_(std::move(options)),
      writer_id_(std::move(writer_id)),
      locks_fd_(std::move(locks)),
      version_counter_(std::random_device()()) {}

SharedFSStore::~SharedFSStore() = default;

uint64_t SharedFSStore::NextVersion() {
  // Milliseconds in the high bits keep versions roughly in creation order across processes; a
  // randomly seeded counter in the low 22 bits keeps them distinct.
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(0, options_.clock->UnixMillis()));
  return (ms << 22) | (version_counter_.fetch_add(1, std::memory_order_relaxed) & 0x3fffff);
}

Status SharedFSStore::LockStripe(uint32_t stripe) {
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  l.l_start = stripe;
  l.l_len = 1;
  const auto deadline = std::chrono::steady_clock::now() + kStripeLockWait;
  auto pause = std::chrono::microseconds(50);
  while (fcntl(locks_fd_.get(), F_OFD_SETLK, &l) != 0) {
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EACCES) return ErrnoError("lock key stripe", errno);
    if (std::chrono::steady_clock::now() >= deadline) {
      return Timeout("key stripe " + std::to_string(stripe) + " of " + options_.dir +
                     " stayed locked by another process");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(5));
  }
  return Status::Ok();
}

void SharedFSStore::UnlockStripe(uint32_t stripe) {
  struct flock l {};
  l.l_type = F_UNLCK;
  l.l_whence = SEEK_SET;
  l.l_start = stripe;
  l.l_len = 1;
  fcntl(locks_fd_.get(), F_OFD_SETLK, &l);
}

template <typename Fn>
auto SharedFSStore::WithStripeLocked(uint32_t stripe, Fn&& fn) -> decltype(fn()) {
  MutexLock guard(&stripe_mu_[stripe % stripe_mu_.size()]);
  PACKICE_RETURN_IF_ERROR(LockStripe(stripe));
  auto result = fn();
  UnlockStripe(stripe);
  return result;
}

Result<std::shared_ptr<CreatingObjectFile>> SharedFSStore::Create(ObjectInfo info, bool exclusive) {
  const SharedObjectName name = SharedNameForKey(info.key);
  const std::string path = PathOf(name.creating());
  info.state = ObjectState::kCreating;
  info.version = NextVersion();
  info.created_unix_ms = options_.clock->UnixMillis();
  info.expires_unix_ms = 0;
  info.tier.clear();
  const uint64_t data_offset = SharedDataOffsetFor(info, writer_id_);
  if (info.size > UINT64_MAX - data_offset - 2 * PageSize()) {
    return OutOfCapacity("object of " + std::to_string(info.size) + " bytes is too large");
  }
  // The exclusive create of the .pkc file picks the one writer of the key.
  UniqueFd fd;
  bool made_shard = false, reclaimed = false;
  while (true) {
    const int err = env().Open(path, O_RDWR | O_CREAT | O_EXCL, kFileMode, &fd);
    if (err == 0) break;
    if (err == ENOENT && !made_shard) {
      made_shard = true;
      PACKICE_RETURN_IF_ERROR(MakeShard(name.shard));
      continue;
    }
    if (err != EEXIST) return ErrnoError("create " + path, err);
    // The other writer may be dead: its file is then taken over at once.
    if (!reclaimed) {
      reclaimed = true;
      PACKICE_ASSIGN_OR_RETURN(Reclaim r, ReclaimIfAbandoned(path, name.stripe));
      if (r != Reclaim::kLive) continue;
    }
    return AlreadyExists(BeingCreatedMessage(info.key, name));
  }
  std::shared_ptr<CreatingObjectFile> object(new CreatingObjectFile(
      options_.env, name, path, std::move(fd), data_offset, std::move(info), exclusive));
  if (Status s = InitCreating(*object); !s.ok()) {
    {
      MutexLock lock(&object->mu_);
      object->phase_ = CreatingObjectFile::Phase::kAbandoned;
    }
    RemoveCreatingFile(*object);
    return s;
  }
  return object;
}

Status SharedFSStore::InitCreating(CreatingObjectFile& object) {
  MutexLock lock(&object.mu_);
  const int fd = object.fd_.get();
  PACKICE_ASSIGN_OR_RETURN(bool locked, TryLockFile(fd, F_WRLCK));
  if (!locked) return Internal("a new object file " + object.path_ + " is locked");
  PACKICE_ASSIGN_OR_RETURN(std::string head, EncodeSharedObjectHeader(SharedObjectHeader{
                                                 object.info_, writer_id_, object.data_offset_}));
  PACKICE_RETURN_IF_ERROR(
      WriteFully(env(), fd, std::as_bytes(std::span(head)), 0, "write header " + object.path_));
  PACKICE_RETURN_IF_ERROR(
      Reserve(env(), fd, object.data_offset_ + object.info_.size, object.path_));
  if (object.exclusive_) {
    // No other process can bind the key while this one holds its .pkc file, so the check
    // holds until the seal.
    std::optional<SharedObjectHeader> bound = ReadBound(object.name_);
    if (bound && bound->info.key == object.info_.key &&
        !Expired(bound->info, options_.clock->UnixMillis())) {
      return AlreadyExists("key '" + object.info_.key + "' exists");
    }
  }
  return Status::Ok();
}

Result<ObjectInfo> SharedFSStore::Seal(CreatingObjectFile& object, uint64_t size) {
  ObjectInfo sealed;
  {
    MutexLock lock(&object.mu_);
    if (object.phase_ != CreatingObjectFile::Phase::kWriting) {
      return WrongState("object '" + object.info_.key + "' is not CREATING");
    }
    if (size > object.info_.size) {
      return InvalidArgument("seal size " + std::to_string(size) + " exceeds allocated " +
                             std::to_string(object.info_.size));
    }
    object.phase_ = CreatingObjectFile::Phase::kSealing;
    sealed = object.info_;
  }
  sealed.state = ObjectState::kSealed;
  sealed.size = size;
  if (sealed.ttl.count() > 0) {
    sealed.expires_unix_ms = options_.clock->UnixMillis() + sealed.ttl.count();
  }
  if (Status s = FinishSeal(object, sealed); !s.ok()) {
    {
      MutexLock lock(&object.mu_);
      object.phase_ = CreatingObjectFile::Phase::kAbandoned;
    }
    RemoveCreatingFile(object);
    return s;
  }
  MutexLock lock(&object.mu_);
  object.phase_ = CreatingObjectFile::Phase::kSealed;
  object.info_ = sealed;
  return sealed;
}

Status SharedFSStore::FinishSeal(CreatingObjectFile& object, const ObjectInfo& sealed) {
  int fd;
  {
    MutexLock lock(&object.mu_);
    fd = object.fd_.get();  // stays open: only RemoveCreatingFile closes it, after this
  }
  const SharedObjectName& name = object.name_;
  PACKICE_ASSIGN_OR_RETURN(std::string head, EncodeSharedObjectHeader(SharedObjectHeader{
                                                 sealed, writer_id_, object.data_offset_}));
  PACKICE_RETURN_IF_ERROR(
      WriteFully(env(), fd, std::as_bytes(std::span(head)), 0, "write header " + object.path_));
  if (int err = env().Truncate(fd, object.data_offset_ + sealed.size); err != 0) {
    return ErrnoError("truncate " + object.path_, err);
  }
  if (int err = options_.sync ? env().SyncData(fd) : 0; err != 0) {
    return ErrnoError("fdatasync " + object.path_, err);
  }
  (void)env().Chmod(fd, kSealedMode);  // sealed: read-only even for a process that opens it by name

  const std::string final_path = PathOf(name.sealed());
  std::string trash;
  PACKICE_RETURN_IF_ERROR(WithStripeLocked(name.stripe, [&]() -> Status {
    if (!StillNamed(object.path_, fd)) {
      return Aborted("object '" + sealed.key + "' was removed as abandoned by another process");
    }
    if (std::optional<SharedObjectHeader> bound = ReadBound(name)) {
      if (bound->info.key != sealed.key) {
        return AlreadyExists("key '" + sealed.key + "' hashes like the bound key '" +
                             bound->info.key + "'");
      }
      if (object.exclusive_ && !Expired(bound->info, options_.clock->UnixMillis())) {
        return AlreadyExists("key '" + sealed.key + "' was bound while this object was created");
      }
    }
    // From here the writer is a reader of its own object: the lock turns into a read lock, so
    // the file is never deleted under the writer's view.
    PACKICE_ASSIGN_OR_RETURN(bool relocked, TryLockFile(fd, F_RDLCK));
    if (!relocked) {
      return Internal("cannot turn the write lock of " + object.path_ + " into a read lock");
    }
    // The object being replaced goes to trash/ first (its readers keep it there until they let
    // go); link + rename keep the key bound at every moment.
    const std::string candidate =
        PathOf("trash/" + name.stem + "." + GenerateObjectId() + kTrashSuffix);
    if (int err = env().Link(final_path, candidate); err == 0) {
      trash = candidate;
    } else if (err != ENOENT && err != EPERM && err != EOPNOTSUPP && err != EMLINK) {
      return ErrnoError("link " + final_path, err);
    }  // no hard links: the rename replaces the file, which readers on this machine keep
    if (int err = env().Rename(object.path_, final_path); err != 0) {
      return ErrnoError("rename " + object.path_ + " to " + final_path, err);
    }
    return Status::Ok();
  }));
  if (Status synced = options_.sync ? SyncDirStatus(env(), PathOf(name.shard)) : Status::Ok();
      !synced.ok()) {
    // Not durable, so not sealed: the object is unbound again, and the object it replaced (if
    // any) bound again, as FileStore keeps the old object when a seal fails.
    WithStripeLocked(name.stripe, [&]() -> Status {
      if (!StillNamed(final_path, fd)) return Status::Ok();
      if (!trash.empty() && env().Rename(trash, final_path) == 0) {
        trash.clear();
        return Status::Ok();
      }
      return MoveToTrash(name).status();
    }).IgnoreError();
    if (!trash.empty()) TryDeleteTrash(trash);
    return synced;
  }
  if (!trash.empty()) TryDeleteTrash(trash);
  return Status::Ok();
}

void SharedFSStore::Abandon(CreatingObjectFile& object) {
  {
    MutexLock lock(&object.mu_);
    if (object.phase_ != CreatingObjectFile::Phase::kWriting) return;
    object.phase_ = CreatingObjectFile::Phase::kAbandoned;
  }
  RemoveCreatingFile(object);
}

void SharedFSStore::RemoveCreatingFile(CreatingObjectFile& object) {
  UniqueFd fd;
  {
    MutexLock lock(&object.mu_);
    fd = std::move(object.fd_);
  }
  if (!fd.valid()) return;
  Status s = WithStripeLocked(object.name_.stripe, [&]() -> Status {
    // Only while the name is still this file: another process may have removed it as abandoned
    // and a new writer created the key again.
    if (!StillNamed(object.path_, fd.get())) return Status::Ok();
    if (int err = env().Unlink(object.path_); err != 0 && err != ENOENT) {
      return ErrnoError("unlink " + object.path_, err);
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    spdlog::warn("event=sharedfs_discard_failed file={} error=\"{}\" action=left_for_gc",
                 object.path_, s.ToString());
  }
}  // closing fd drops the write lock

Status SharedFSStore::Touch(CreatingObjectFile& object) {
  MutexLock lock(&object.mu_);
  if (object.phase_ != CreatingObjectFile::Phase::kWriting) {
    return WrongState("object '" + object.info_.key + "' is not CREATING");
  }
  struct stat st {};
  if (int err = env().Fstat(object.fd_.get(), &st); err != 0) {
    return ErrnoError("fstat " + object.path_, err);
  }
  if (st.st_nlink == 0) {
    return Aborted("object '" + object.info_.key + "' was removed as abandoned by another process");
  }
  if (futimens(object.fd_.get(), nullptr) != 0) return ErrnoError("touch " + object.path_, errno);
  return Status::Ok();
}

std::string SharedFSStore::BeingCreatedMessage(const std::string& key,
                                               const SharedObjectName& name) const {
  std::string writer = "another writer";
  UniqueFd fd;
  if (env().Open(PathOf(name.creating()), O_RDONLY, 0, &fd) == 0) {
    Result<SharedObjectHeader> h = ReadSharedObjectHeader(env(), fd.get());
    if (h.ok()) {
      if (h->info.key != key) {
        return "key '" + key + "' hashes like key '" + h->info.key + "', being created by " +
               h->writer;
      }
      writer = h->writer;
    }
  }
  return "key '" + key + "' is being created by " + writer;
}

std::optional<SharedObjectHeader> SharedFSStore::ReadBound(const SharedObjectName& name) const {
  UniqueFd fd;
  if (env().Open(PathOf(name.sealed()), O_RDONLY, 0, &fd) != 0) return std::nullopt;
  Result<SharedObjectHeader> h = ReadSharedObjectHeader(env(), fd.get());
  if (!h.ok()) return std::nullopt;
  return std::move(h).value();
}

Status SharedFSStore::CheckReadable(const SharedObjectHeader& header, std::string_view key) const {
  if (header.info.key != key || header.info.state != ObjectState::kSealed) {
    return NotFound("no object '" + std::string(key) + "'");
  }
  if (Expired(header.info, options_.clock->UnixMillis())) {
    return NotFound("object '" + std::string(key) + "' expired");
  }
  return Status::Ok();
}

namespace {

// The header of the object file open at `fd`; one that does not decode is kInternal, naming
// the file.
Result<SharedObjectHeader> ReadHeaderOf(Env& env, int fd, const std::string& path) {
  Result<SharedObjectHeader> header = ReadSharedObjectHeader(env, fd);
  if (!header.ok()) {
    return Internal("object file " + path + " is corrupt: " + header.status().ToString());
  }
  return header;
}

}  // namespace

bool SharedFSStore::StillNamed(const std::string& path, int fd) const {
  struct stat named {};
  struct stat opened {};
  return env().Stat(path, &named) == 0 && env().Fstat(fd, &opened) == 0 && SameFile(named, opened);
}

Result<SharedObjectHeader> SharedFSStore::ReadSealedHeader(const std::string& path,
                                                           std::string_view key) const {
  UniqueFd fd;
  if (int err = env().Open(path, O_RDONLY, 0, &fd); err != 0) {
    if (err == ENOENT) return NotFound("no object '" + std::string(key) + "'");
    return ErrnoError("open " + path, err);
  }
  return ReadHeaderOf(env(), fd.get(), path);
}

Status SharedFSStore::MakeShard(const std::string& shard) {
  PACKICE_ASSIGN_OR_RETURN(bool made, MakeDirIfMissing(env(), PathOf(shard), kDirMode));
  if (made && options_.sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env(), PathOf("objects")));
  return Status::Ok();
}

Result<std::shared_ptr<SealedObjectFile>> SharedFSStore::OpenSealed(std::string_view key) {
  const SharedObjectName name = SharedNameForKey(key);
  const std::string path = PathOf(name.sealed());
  UniqueFd fd;
  if (int err = env().Open(path, O_RDONLY, 0, &fd); err != 0) {
    if (err != ENOENT) return ErrnoError("open " + path, err);
    struct stat creating {};
    if (env().Stat(PathOf(name.creating()), &creating) == 0) {
      return NotFound("object '" + std::string(key) + "' is not sealed yet");
    }
    return NotFound("no object '" + std::string(key) + "'");
  }
  PACKICE_ASSIGN_OR_RETURN(bool locked, TryLockFile(fd.get(), F_RDLCK));
  if (!locked) return Unavailable("object file " + path + " is write-locked");
  // Locked now, the file stays until this reader lets go — unless it was unbound and deleted
  // between the open and the lock.
  struct stat st {};
  if (int err = env().Fstat(fd.get(), &st); err != 0) return ErrnoError("fstat " + path, err);
  if (st.st_nlink == 0) return NotFound("no object '" + std::string(key) + "'");
  PACKICE_ASSIGN_OR_RETURN(SharedObjectHeader header, ReadHeaderOf(env(), fd.get(), path));
  PACKICE_RETURN_IF_ERROR(CheckReadable(header, key));
  return std::make_shared<SealedObjectFile>(options_.env, std::move(fd), std::move(header.info),
                                            header.data_offset);
}

Result<ObjectInfo> SharedFSStore::Stat(std::string_view key) {
  const SharedObjectName name = SharedNameForKey(key);
  PACKICE_ASSIGN_OR_RETURN(SharedObjectHeader header, ReadSealedHeader(PathOf(name.sealed()), key));
  PACKICE_RETURN_IF_ERROR(CheckReadable(header, key));
  return std::move(header.info);
}

Result<std::string> SharedFSStore::MoveToTrash(const SharedObjectName& name) {
  const std::string from = PathOf(name.sealed());
  std::string to = PathOf("trash/" + name.stem + "." + GenerateObjectId() + kTrashSuffix);
  if (int err = env().Rename(from, to); err != 0) return ErrnoError("rename " + from, err);
  return to;
}

Status SharedFSStore::Delete(std::string_view key) {
  const SharedObjectName name = SharedNameForKey(key);
  std::string trash;
  Status s = WithStripeLocked(name.stripe, [&]() -> Status {
    PACKICE_ASSIGN_OR_RETURN(SharedObjectHeader header,
                             ReadSealedHeader(PathOf(name.sealed()), key));
    if (header.info.key != key) return NotFound("no object '" + std::string(key) + "'");
    PACKICE_ASSIGN_OR_RETURN(trash, MoveToTrash(name));
    return CheckReadable(header, key);  // an expired object goes too, but was not there
  });
  if (!trash.empty()) TryDeleteTrash(trash);
  return s;
}

Result<ListPage> SharedFSStore::List(const ListOptions& options) {
  const uint32_t limit = std::clamp(options.limit, 1u, kMaxListLimit);
  const int64_t now_ms = options_.clock->UnixMillis();
  std::map<std::string, ObjectInfo> first;  // the limit + 1 smallest matching keys
  for (unsigned shard = 0; shard < 256; ++shard) {
    const std::string shard_dir = PathOf(ShardName(shard));
    for (const std::string& file : NamesWithSuffix(env(), shard_dir, kSealedSuffix)) {
      UniqueFd fd;
      if (env().Open(shard_dir + "/" + file, O_RDONLY, 0, &fd) != 0) continue;  // unbound meanwhile
      Result<SharedObjectHeader> header = ReadSharedObjectHeader(env(), fd.get());
      if (!header.ok()) continue;
      ObjectInfo& info = header->info;
      if (info.state != ObjectState::kSealed || Expired(info, now_ms) ||
          !info.key.starts_with(options.prefix) ||
          (!options.start_after.empty() && info.key <= options.start_after) ||
          SharedNameForKey(info.key).stem + kSealedSuffix != file) {
        continue;
      }
      if (first.size() > limit && info.key >= first.rbegin()->first) continue;
      first.emplace(info.key, std::move(info));
      if (first.size() > limit + 1) first.erase(std::prev(first.end()));
    }
  }
  ListPage page;
  page.truncated = first.size() > limit;
  for (auto& [key, info] : first) {
    if (page.objects.size() == limit) break;
    page.objects.push_back(std::move(info));
  }
  return page;
}

Result<SharedFSStore::Reclaim> SharedFSStore::ReclaimIfAbandoned(const std::string& path,
                                                                 uint32_t stripe) {
  UniqueFd fd;
  if (int err = env().Open(path, O_RDONLY, 0, &fd); err != 0) {
    if (err == ENOENT) return Reclaim::kGone;
    return ErrnoError("open " + path, err);
  }
  // A writer holds its lock from just after the create until the seal; the age covers the
  // moment in between, and filesystems that lose locks.
  auto abandoned = [&]() -> Result<bool> {
    PACKICE_ASSIGN_OR_RETURN(bool locked, LockedElsewhere(fd.get()));
    if (locked) return false;
    struct stat st {};
    if (int err = env().Fstat(fd.get(), &st); err != 0) return ErrnoError("fstat " + path, err);
    return options_.clock->UnixMillis() - MtimeMillis(st) >= options_.abandoned_after.count();
  };
  PACKICE_ASSIGN_OR_RETURN(bool candidate, abandoned());
  if (!candidate) return Reclaim::kLive;
  return WithStripeLocked(stripe, [&]() -> Result<Reclaim> {
    if (!StillNamed(path, fd.get())) return Reclaim::kGone;  // removed, maybe created anew
    PACKICE_ASSIGN_OR_RETURN(bool still, abandoned());
    if (!still) return Reclaim::kLive;
    std::string writer = "unknown writer";
    if (Result<SharedObjectHeader> h = ReadSharedObjectHeader(env(), fd.get()); h.ok()) {
      writer = h->writer;
    }
    if (int err = env().Unlink(path); err != 0 && err != ENOENT) {
      return ErrnoError("unlink " + path, err);
    }
    spdlog::info("event=sharedfs_abandoned_removed file={} writer={}", path, writer);
    return Reclaim::kRemoved;
  });
}

bool SharedFSStore::TryDeleteTrash(const std::string& path) {
  UniqueFd fd;
  if (int err = env().Open(path, O_RDONLY, 0, &fd); err != 0) return err == ENOENT;
  Result<bool> in_use = LockedElsewhere(fd.get());
  if (!in_use.ok() || *in_use) return false;
  // A reader that opened the file before it was unbound and locks it only now sees that it has
  // no name left (OpenSealed checks st_nlink) and reports kNotFound.
  const int err = env().Unlink(path);
  return err == 0 || err == ENOENT;
}

void SharedFSStore::CollectShard(const std::string& shard, SharedFSGcStats* stats) {
  const std::string shard_dir = PathOf(shard);
  const int64_t now_ms = options_.clock->UnixMillis();
  for (const std::string& file : NamesWithSuffix(env(), shard_dir, kCreatingSuffix)) {
    uint32_t stripe = 0;
    const std::string stem = file.substr(0, file.size() - std::strlen(kCreatingSuffix));
    if (!SharedStripeForStem(stem, &stripe)) continue;  // not ours
    Result<Reclaim> r = ReclaimIfAbandoned(shard_dir + "/" + file, stripe);
    if (!r.ok()) {
      spdlog::warn("event=sharedfs_gc_error file={}/{} error=\"{}\"", shard_dir, file,
                   r.status().ToString());
    } else if (*r == Reclaim::kRemoved) {
      ++stats->abandoned;
    } else if (*r == Reclaim::kLive) {
      ++stats->creating;
    }
  }
  for (const std::string& file : NamesWithSuffix(env(), shard_dir, kSealedSuffix)) {
    const std::string path = shard_dir + "/" + file;
    const std::string stem = file.substr(0, file.size() - std::strlen(kSealedSuffix));
    UniqueFd fd;
    if (env().Open(path, O_RDONLY, 0, &fd) != 0) continue;
    Result<SharedObjectHeader> header = ReadSharedObjectHeader(env(), fd.get());
    const SharedObjectName name =
        header.ok() ? SharedNameForKey(header->info.key) : SharedObjectName();
    if (!header.ok() || name.stem != stem || header->info.state != ObjectState::kSealed) {
      ++stats->corrupt;
      spdlog::warn("event=sharedfs_corrupt_object file={} error=\"{}\" action=left_in_place", path,
                   header.ok() ? "misnamed or unsealed" : header.status().ToString());
      continue;
    }
    if (!Expired(header->info, now_ms)) {
      struct stat st {};
      ++stats->objects;
      if (env().Fstat(fd.get(), &st) == 0) stats->object_bytes += static_cast<uint64_t>(st.st_size);
      continue;
    }
    std::string trash;
    Status s = WithStripeLocked(name.stripe, [&]() -> Status {
      if (!StillNamed(path, fd.get())) return Status::Ok();  // rebound or deleted meanwhile
      PACKICE_ASSIGN_OR_RETURN(trash, MoveToTrash(name));
      return Status::Ok();
    });
    if (!s.ok()) {
      spdlog::warn("event=sharedfs_gc_error file={} error=\"{}\"", path, s.ToString());
    } else if (!trash.empty()) {
      ++stats->expired;
    }
  }
}

Result<SharedFSGcStats> SharedFSStore::CollectGarbage() {
  SharedFSGcStats stats;
  const std::string objects = PathOf("objects");
  if (access(objects.c_str(), R_OK | X_OK) != 0) return ErrnoError("read " + objects, errno);
  for (unsigned shard = 0; shard < 256; ++shard) CollectShard(ShardName(shard), &stats);
  const std::string trash_dir = PathOf("trash");
  for (const std::string& file : NamesWithSuffix(env(), trash_dir, kTrashSuffix)) {
    if (TryDeleteTrash(trash_dir + "/" + file)) {
      ++stats.unlinked;
    } else {
      ++stats.in_use;
    }
  }
  return stats;
}

std::pair<uint64_t, uint64_t> SharedFSStore::FilesystemBytes() const {
  struct statvfs vfs {};
  if (statvfs(options_.dir.c_str(), &vfs) != 0) return {0, 0};
  return {uint64_t{vfs.f_blocks} * vfs.f_frsize, uint64_t{vfs.f_bavail} * vfs.f_frsize};
}

}  // namespace packice
