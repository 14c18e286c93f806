#include "backends/cas/local_cas_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "backends/file/file_blob.h"
#include "core/io.h"

namespace packice {

class LocalCasStore::State {
 public:
  explicit State(LocalCasStoreOptions options)
      : options_(std::move(options)),
        space_(std::make_shared<FileSpace>(options_.env, options_.dir + "/tmp",
                                           options_.capacity_bytes)) {}

  const LocalCasStoreOptions& options() const { return options_; }
  Env& env() const { return *options_.env; }
  const std::shared_ptr<FileSpace>& space() const { return space_; }

  std::string DirFor(const Digest& digest) const {
    const std::string hex = digest.hex();
    return options_.dir + "/" + std::string(DigestAlgorithmName(digest.algorithm)) + "/" +
           hex.substr(0, 2) + "/" + hex.substr(2, 2);
  }
  std::string PathFor(const Digest& digest) const {
    return DirFor(digest) + "/" + digest.hex().substr(4);
  }
  std::string NewTmpPath() {
    return options_.dir + "/tmp/" + std::to_string(++next_tmp_) + ".blob";
  }

  UniqueFd lock_fd;

 private:
  const LocalCasStoreOptions options_;
  const std::shared_ptr<FileSpace> space_;
  std::atomic<uint64_t> next_tmp_{0};
};

namespace {

constexpr DigestAlgorithm kAlgorithms[] = {DigestAlgorithm::kBlake3, DigestAlgorithm::kSha256};

// The import the current thread is in (LocalCasStore::ImportScope), innermost first.
thread_local LocalCasStore::ImportScope* t_import = nullptr;

// Errors of link(2) and open(2) that mean "copy instead".
bool NoLinkHere(int err) {
  return err == EXDEV || err == EPERM || err == EACCES || err == EROFS || err == EMLINK;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Result<std::unique_ptr<LocalCasStore>> LocalCasStore::Open(LocalCasStoreOptions options) {
  if (options.dir.empty()) return InvalidArgument("a CAS store needs a directory");
  if (!options.clock) options.clock = Clock::System();
  if (!options.env) options.env = Env::Default();
  auto state = std::make_shared<State>(options);
  PACKICE_ASSIGN_OR_RETURN(state->lock_fd, OpenStoreDir(*options.env, options.dir,
                                                        {"tmp", "blake3", "sha256"}, options.sync));
  return std::unique_ptr<LocalCasStore>(new LocalCasStore(std::move(state)));
}

LocalCasStore::LocalCasStore(std::shared_ptr<State> state) : state_(std::move(state)) {}
LocalCasStore::~LocalCasStore() = default;

std::string LocalCasStore::PathFor(const Digest& digest) const { return state_->PathFor(digest); }

uint64_t LocalCasStore::capacity_bytes() const { return state_->options().capacity_bytes; }

uint64_t LocalCasStore::ChargeFor(uint64_t size) const {
  return size > UINT64_MAX - PageSize() ? UINT64_MAX : RoundUpToPage(size);
}

Result<std::unique_ptr<LocalCasStore::ImportScope>> LocalCasStore::ImportScope::Open(
    LocalCasStore& store, const Digest& digest, const std::string& source) {
  Env& env = store.state_->env();
  struct stat st {};
  if (int err = env.Stat(source, &st); err != 0) return ErrnoError("stat " + source, err);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(source + " is not a regular file");
  if (static_cast<uint64_t>(st.st_size) != digest.size) {
    return InvalidArgument(source + " has " + std::to_string(st.st_size) + " bytes, not " +
                           digest.ToString());
  }
  const std::string tmp = store.state_->NewTmpPath();
  if (int err = env.Link(source, tmp); err != 0) {
    if (NoLinkHere(err)) return Unimplemented("cannot link " + source + ": " + std::strerror(err));
    return ErrnoError("link " + source, err);
  }
  UniqueFd fd;
  int err = env.Open(tmp, O_RDWR, 0, &fd);
  if (err == 0 && env.Fstat(fd.get(), &st) == 0 &&
      static_cast<uint64_t>(st.st_size) != digest.size) {
    err = EAGAIN;  // changed between the stat and the link
  }
  if (err != 0) {
    (void)env.Unlink(tmp);
    if (NoLinkHere(err)) return Unimplemented("cannot open " + source + " for the import");
    if (err == EAGAIN) return InvalidArgument(source + " changed while it was imported");
    return ErrnoError("open " + tmp, err);
  }
  return std::unique_ptr<ImportScope>(
      new ImportScope(store, digest.ToString(), tmp, std::move(fd)));
}

LocalCasStore::ImportScope::ImportScope(LocalCasStore& store, std::string key, std::string tmp,
                                        UniqueFd fd)
    : store_(store),
      key_(std::move(key)),
      tmp_(std::move(tmp)),
      fd_(std::move(fd)),
      outer_(t_import) {
  t_import = this;
}

LocalCasStore::ImportScope::~ImportScope() {
  t_import = outer_;
  if (!taken()) (void)store_.state_->env().Unlink(tmp_);
}

Result<std::shared_ptr<Blob>> LocalCasStore::Allocate(const ObjectInfo& info) {
  PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(info.key));
  if (info.size != digest.size) {
    return InvalidArgument("a blob of " + std::to_string(info.size) + " bytes cannot be " +
                           info.key);
  }
  if (!info.meta.empty()) return InvalidArgument("a CAS blob has no metadata");
  if (info.ttl.count() != 0)
    return InvalidArgument("a CAS blob has no TTL: it stays until evicted");
  if (ChargeFor(info.size) > capacity_bytes()) {
    return OutOfCapacity("a blob of " + std::to_string(info.size) +
                         " bytes exceeds the CAS capacity of " + std::to_string(capacity_bytes()));
  }
  const uint64_t charge = ChargeFor(info.size);
  PACKICE_RETURN_IF_ERROR(state_->space()->Charge(charge));
  for (ImportScope* import = t_import; import != nullptr; import = import->outer_) {
    if (&import->store_ != this || import->key_ != info.key || import->taken()) continue;
    return std::shared_ptr<Blob>(std::make_shared<FileBlob>(
        state_->space(), import->tmp_, std::move(import->fd_), 0, info.size, charge));
  }
  const std::string path = state_->NewTmpPath();
  Env& env = state_->env();
  UniqueFd fd;
  int err = env.Open(path, O_RDWR | O_CREAT | O_EXCL, 0600, &fd);
  if (err == 0) err = env.Truncate(fd.get(), info.size);
  if (err != 0) {
    if (fd.valid()) (void)env.Unlink(path);
    state_->space()->Uncharge(charge);
    return ErrnoError("create " + path, err);
  }
  return std::shared_ptr<Blob>(
      std::make_shared<FileBlob>(state_->space(), path, std::move(fd), 0, info.size, charge));
}

Status LocalCasStore::Commit(Blob& blob, const ObjectInfo& info) {
  PACKICE_ASSIGN_OR_RETURN(Digest digest, Digest::ParseCanonical(info.key));
  Env& env = state_->env();
  const bool sync = state_->options().sync;
  const std::string dir = state_->DirFor(digest);
  PACKICE_RETURN_IF_ERROR(MakeDirs(env, dir, 0700, sync));
  Status s = static_cast<FileBlob&>(blob).Commit({}, info.size, state_->PathFor(digest), dir, sync,
                                                 /*no_replace=*/true);
  if (s.code() == StatusCode::kAlreadyExists) return AlreadyExists(info.key + " is stored already");
  return s;
}

void LocalCasStore::Remove(Blob& blob) { static_cast<FileBlob&>(blob).Doom(); }

Result<std::vector<StoredObject>> LocalCasStore::Recover() {
  const std::string& root = state_->options().dir;
  Env& env = state_->env();
  for (const std::string& name : NamesWithSuffix(env, root + "/tmp", "")) {
    (void)env.Unlink(root + "/tmp/" + name);  // never stored, or removed: as if never there
  }
  std::vector<StoredObject> out;
  uint64_t version = 0;
  for (DigestAlgorithm algorithm : kAlgorithms) {
    const std::string top = root + "/" + std::string(DigestAlgorithmName(algorithm));
    for (const std::string& a : NamesWithSuffix(env, top, "")) {
      for (const std::string& b : NamesWithSuffix(env, top + "/" + a, "")) {
        const std::string dir = top + "/" + a + "/" + b;
        for (const std::string& rest : NamesWithSuffix(env, dir, "")) {
          const std::string path = dir + "/" + rest;
          struct stat st {};
          Result<Digest> digest = InvalidArgument("not a blob name");
          if (a.size() == 2 && b.size() == 2 && IsHex(a) && IsHex(b) && env.Stat(path, &st) == 0 &&
              S_ISREG(st.st_mode)) {
            digest = Digest::FromHex(algorithm, a + b + rest, static_cast<uint64_t>(st.st_size));
          }
          if (!digest.ok()) {
            spdlog::warn("event=cas_stray_file file={} error=\"{}\" action=left", path,
                         digest.status().ToString());
            continue;
          }
          const uint64_t charge = ChargeFor(digest->size);
          state_->space()->ChargeUnchecked(charge);  // what is on disk is there: count it
          StoredObject s;
          s.info.key = digest->ToString();
          s.info.version = ++version;
          s.info.size = digest->size;
          s.info.state = ObjectState::kSealed;
          s.info.tier = "disk";
          s.info.created_unix_ms =
              static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
          s.blob = std::make_shared<FileBlob>(state_->space(), path, UniqueFd(), 0, digest->size,
                                              charge);
          out.push_back(std::move(s));
        }
      }
    }
  }
  return out;
}

StoreStats LocalCasStore::GetStats() const {
  return StoreStats{state_->space()->used(), 0, state_->options().capacity_bytes};
}

}  // namespace packice
