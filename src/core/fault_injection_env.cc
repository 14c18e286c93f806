#include "core/fault_injection_env.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace packice {
namespace {

// A view that keeps its mapping's range registered with the env while it lives.
class TrackedView final : public BlobView {
 public:
  TrackedView(std::shared_ptr<BlobView> inner, std::shared_ptr<void> range)
      : inner_(std::move(inner)), range_(std::move(range)) {}
  std::span<std::byte> bytes() override { return inner_->bytes(); }

 private:
  std::shared_ptr<BlobView> inner_;
  std::shared_ptr<void> range_;
};

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

FaultInjectionEnv::FaultInjectionEnv(std::shared_ptr<Env> base) : base_(std::move(base)) {}
FaultInjectionEnv::~FaultInjectionEnv() = default;

void FaultInjectionEnv::InjectFault(Fault fault) {
  MutexLock lock(&mu_);
  faults_.push_back(std::move(fault));
}

void FaultInjectionEnv::SetShortWrites(size_t max_bytes) {
  MutexLock lock(&mu_);
  short_write_bytes_ = max_bytes;
}

void FaultInjectionEnv::ClearFaults() {
  MutexLock lock(&mu_);
  faults_.clear();
  short_write_bytes_ = 0;
}

int FaultInjectionEnv::faults_hit() const {
  MutexLock lock(&mu_);
  return faults_hit_;
}

bool FaultInjectionEnv::down() const {
  MutexLock lock(&mu_);
  return down_;
}

int FaultInjectionEnv::Check(Op op, const std::string& path) {
  if (down_) return EIO;
  for (Fault& f : faults_) {
    if (f.op != op || f.count == 0) continue;
    if (!f.path_part.empty() && path.find(f.path_part) == std::string::npos) continue;
    if (f.skip > 0) {
      --f.skip;
      return 0;
    }
    if (f.count > 0) --f.count;
    ++faults_hit_;
    if (f.crash) down_ = true;
    return f.crash ? EIO : f.error;
  }
  return 0;
}

std::string FaultInjectionEnv::PathOfFd(int fd) const {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  return ec ? std::string() : p.string();
}

std::optional<FaultInjectionEnv::FileId> FaultInjectionEnv::IdOf(const std::string& path) {
  struct stat st {};
  if (base_->Stat(path, &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

FaultInjectionEnv::FileId FaultInjectionEnv::DirOf(const std::string& path) {
  return IdOf(ParentOf(path)).value_or(FileId{0, 0});
}

int FaultInjectionEnv::Track(int fd, FileState** state) {
  struct stat st {};
  if (int err = base_->Fstat(fd, &st); err != 0) return err;
  const FileId id{st.st_dev, st.st_ino};
  auto it = files_.find(id);
  if (it == files_.end()) {
    // A new open file description of its own: a dup would share (and keep alive) the store's
    // OFD locks.
    FileState f;
    if (int err = base_->Open("/proc/self/fd/" + std::to_string(fd), O_RDWR, 0, &f.fd); err != 0) {
      return err;
    }
    f.synced_size = static_cast<uint64_t>(st.st_size);  // untracked files are synced
    it = files_.emplace(id, std::move(f)).first;
  }
  *state = &it->second;
  return 0;
}

int FaultInjectionEnv::SaveUndo(FileState& f, uint64_t offset, uint64_t length) {
  const uint64_t end = std::min(offset + length, f.synced_size);
  uint64_t pos = offset;
  while (pos < end) {
    auto next = f.undo.upper_bound(pos);
    if (next != f.undo.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second.size() > pos) {  // already saved
        pos = prev->first + prev->second.size();
        continue;
      }
    }
    const uint64_t gap_end = next == f.undo.end() ? end : std::min(end, next->first);
    std::string bytes(gap_end - pos, '\0');  // past the end of the file (truncated): zeros
    size_t done = 0;
    while (done < bytes.size()) {
      size_t n = 0;
      auto out = std::as_writable_bytes(std::span(bytes)).subspan(done);
      if (int err = base_->Read(f.fd.get(), out, pos + done, &n); err != 0) return err;
      if (n == 0) break;
      done += n;
    }
    f.undo.emplace(pos, std::move(bytes));
    pos = gap_end;
  }
  return 0;
}

std::optional<FaultInjectionEnv::SavedFile> FaultInjectionEnv::SaveFile(const std::string& path) {
  struct stat st {};
  if (base_->Stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  SavedFile saved;
  saved.id = FileId{st.st_dev, st.st_ino};
  saved.mode = st.st_mode & 07777;
  UniqueFd fd;
  if (base_->Open(path, O_RDONLY, 0, &fd) != 0) return std::nullopt;
  saved.bytes.resize(static_cast<size_t>(st.st_size));
  if (!ReadFully(*base_, fd.get(), std::as_writable_bytes(std::span(saved.bytes)), 0).ok()) {
    return std::nullopt;
  }
  // What the disk holds of it: the bytes as of its last sync.
  if (auto it = files_.find(saved.id); it != files_.end()) {
    saved.bytes.resize(it->second.synced_size);
    for (const auto& [offset, bytes] : it->second.undo)
      saved.bytes.replace(offset, bytes.size(), bytes);
  }
  return saved;
}

void FaultInjectionEnv::Record(NameChange change) { pending_.push_back(std::move(change)); }

// --- forwarded calls ---------------------------------------------------------------------------

int FaultInjectionEnv::Open(const std::string& path, int flags, mode_t mode, UniqueFd* fd) {
  const bool creating = (flags & O_CREAT) != 0;
  if (!creating) return base_->Open(path, flags, mode, fd);
  MutexLock lock(&mu_);
  if (int err = Check(Op::kOpen, path); err != 0) return err;
  const bool existed = IdOf(path).has_value();
  if (int err = base_->Open(path, flags, mode, fd); err != 0) return err;
  if (existed) return 0;
  struct stat st {};
  if (base_->Fstat(fd->get(), &st) != 0) return 0;
  Record(NameChange{
      NameChange::kCreate, path, "", FileId{st.st_dev, st.st_ino}, std::nullopt, {DirOf(path)}});
  FileState* f = nullptr;
  return Track(fd->get(), &f);
}

int FaultInjectionEnv::Write(int fd, std::span<const std::byte> data, uint64_t offset,
                             size_t* written) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kWrite, faults_.empty() ? std::string() : PathOfFd(fd)); err != 0) {
    return err;
  }
  if (short_write_bytes_ != 0 && data.size() > short_write_bytes_) {
    data = data.first(short_write_bytes_);
    ++faults_hit_;
  }
  FileState* f = nullptr;
  if (int err = Track(fd, &f); err != 0) return err;
  if (int err = SaveUndo(*f, offset, data.size()); err != 0) return err;
  return base_->Write(fd, data, offset, written);
}

int FaultInjectionEnv::Read(int fd, std::span<std::byte> out, uint64_t offset, size_t* read) {
  return base_->Read(fd, out, offset, read);
}

int FaultInjectionEnv::Truncate(int fd, uint64_t size) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kTruncate, faults_.empty() ? std::string() : PathOfFd(fd)); err != 0) {
    return err;
  }
  FileState* f = nullptr;
  if (int err = Track(fd, &f); err != 0) return err;
  if (size < f->synced_size) {
    if (int err = SaveUndo(*f, size, f->synced_size - size); err != 0) return err;
  }
  return base_->Truncate(fd, size);
}

int FaultInjectionEnv::Allocate(int fd, uint64_t size) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kAllocate, faults_.empty() ? std::string() : PathOfFd(fd)); err != 0) {
    return err;
  }
  FileState* f = nullptr;
  if (int err = Track(fd, &f); err != 0) return err;
  return base_->Allocate(fd, size);
}

int FaultInjectionEnv::SyncData(int fd) {
  MutexLock lock(&mu_);
  // A failed sync syncs nothing here. (Linux may drop the dirty pages of a failed fdatasync, so
  // a later sync that succeeds does not prove them durable; the stores give up on a file whose
  // sync failed, so the difference does not matter to them.)
  if (int err = Check(Op::kSyncData, faults_.empty() ? std::string() : PathOfFd(fd)); err != 0) {
    return err;
  }
  if (int err = base_->SyncData(fd); err != 0) return err;
  struct stat st {};
  if (base_->Fstat(fd, &st) != 0) return 0;
  auto it = files_.find(FileId{st.st_dev, st.st_ino});
  if (it == files_.end()) return 0;
  FileState& f = it->second;
  f.synced_size = static_cast<uint64_t>(st.st_size);
  f.undo.clear();
  // Live writable mappings may change the synced bytes again.
  std::erase_if(f.writable_maps, [](const std::weak_ptr<MapRange>& m) { return m.expired(); });
  for (const auto& weak : f.writable_maps) {
    if (auto m = weak.lock()) {
      if (int err = SaveUndo(f, m->offset, m->length); err != 0) return err;
    }
  }
  if (f.writable_maps.empty()) files_.erase(it);
  return 0;
}

int FaultInjectionEnv::SyncDir(const std::string& dir) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kSyncDir, dir); err != 0) return err;
  if (int err = base_->SyncDir(dir); err != 0) return err;
  const std::optional<FileId> id = IdOf(dir);
  if (!id) return 0;
  std::erase_if(pending_, [&](const NameChange& c) {
    return std::find(c.dirs.begin(), c.dirs.end(), *id) != c.dirs.end();
  });
  return 0;
}

int FaultInjectionEnv::Chmod(int fd, mode_t mode) { return base_->Chmod(fd, mode); }
int FaultInjectionEnv::Fstat(int fd, struct stat* st) { return base_->Fstat(fd, st); }
int FaultInjectionEnv::Stat(const std::string& path, struct stat* st) {
  return base_->Stat(path, st);
}

int FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kRename, from + " -> " + to); err != 0) return err;
  const std::optional<FileId> id = IdOf(from);
  std::optional<SavedFile> replaced = SaveFile(to);
  if (replaced && id && replaced->id == *id) replaced.reset();  // two names of one file
  if (int err = base_->Rename(from, to); err != 0) return err;
  Record(NameChange{NameChange::kRename,
                    to,
                    from,
                    id.value_or(FileId{0, 0}),
                    std::move(replaced),
                    {DirOf(from), DirOf(to)}});
  return 0;
}

int FaultInjectionEnv::Link(const std::string& from, const std::string& to) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kLink, from + " -> " + to); err != 0) return err;
  if (int err = base_->Link(from, to); err != 0) return err;
  Record(NameChange{
      NameChange::kLink, to, from, IdOf(to).value_or(FileId{0, 0}), std::nullopt, {DirOf(to)}});
  return 0;
}

int FaultInjectionEnv::Unlink(const std::string& path) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kUnlink, path); err != 0) return err;
  std::optional<SavedFile> saved = SaveFile(path);
  if (int err = base_->Unlink(path); err != 0) return err;
  const FileId id = saved ? saved->id : FileId{0, 0};
  Record(NameChange{NameChange::kUnlink, path, "", id, std::move(saved), {DirOf(path)}});
  return 0;
}

int FaultInjectionEnv::MakeDir(const std::string& dir, mode_t mode) {
  MutexLock lock(&mu_);
  if (int err = Check(Op::kMakeDir, dir); err != 0) return err;
  if (int err = base_->MakeDir(dir, mode); err != 0) return err;
  Record(NameChange{
      NameChange::kMakeDir, dir, "", IdOf(dir).value_or(FileId{0, 0}), std::nullopt, {DirOf(dir)}});
  return 0;
}

int FaultInjectionEnv::ListDir(const std::string& dir, std::vector<std::string>* names) {
  return base_->ListDir(dir, names);
}

Result<std::shared_ptr<BlobView>> FaultInjectionEnv::Map(int fd, uint64_t offset, uint64_t map_size,
                                                         uint64_t size, bool writable,
                                                         bool populate) {
  if (!writable) return base_->Map(fd, offset, map_size, size, writable, populate);
  MutexLock lock(&mu_);
  if (down_) return ErrnoError("mmap object", EIO);
  FileState* f = nullptr;
  if (int err = Track(fd, &f); err != 0) return ErrnoError("track mapped file", err);
  // Whatever the mapping writes is unsynced until the next SyncData.
  if (int err = SaveUndo(*f, offset, map_size); err != 0) return ErrnoError("save file", err);
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view,
                           base_->Map(fd, offset, map_size, size, writable, populate));
  auto range = std::make_shared<MapRange>(MapRange{offset, map_size});
  f->writable_maps.push_back(range);
  return std::shared_ptr<BlobView>(std::make_shared<TrackedView>(std::move(view), range));
}

// --- the crash ---------------------------------------------------------------------------------

Status FaultInjectionEnv::SimulateCrash() {
  MutexLock lock(&mu_);
  Status s = Revert();
  files_.clear();
  pending_.clear();
  down_ = false;
  return s;
}

Status FaultInjectionEnv::Restore(const std::string& path, const SavedFile& saved,
                                  std::map<FileId, FileId>* reborn) {
  UniqueFd fd;
  if (int err = base_->Open(path, O_WRONLY | O_CREAT | O_EXCL, 0600, &fd); err != 0) {
    return ErrnoError("restore " + path, err);
  }
  PACKICE_RETURN_IF_ERROR(WriteFully(*base_, fd.get(), std::as_bytes(std::span(saved.bytes)), 0));
  if (int err = base_->Chmod(fd.get(), saved.mode); err != 0) {
    return ErrnoError("chmod " + path, err);
  }
  if (std::optional<FileId> id = IdOf(path)) (*reborn)[*id] = saved.id;
  return Status::Ok();
}

Status FaultInjectionEnv::Revert() {
  // Data first, through this env's own descriptors (inodes, whatever their names now).
  for (auto& [id, f] : files_) {
    if (int err = base_->Truncate(f.fd.get(), f.synced_size); err != 0) {
      return ErrnoError("revert size", err);
    }
    for (const auto& [offset, bytes] : f.undo) {
      PACKICE_RETURN_IF_ERROR(
          WriteFully(*base_, f.fd.get(), std::as_bytes(std::span(bytes)), offset, "revert data"));
    }
  }
  // Then names, newest change first. A file put back gets a new inode: `reborn` maps it to the
  // old one, so earlier changes still recognize it.
  std::map<FileId, FileId> reborn;
  auto current = [&](const std::string& path) -> std::optional<FileId> {
    std::optional<FileId> id = IdOf(path);
    if (id) {
      if (auto it = reborn.find(*id); it != reborn.end()) id = it->second;
    }
    return id;
  };
  for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
    const NameChange& c = *it;
    switch (c.kind) {
      case NameChange::kCreate:
      case NameChange::kLink:
        if (current(c.path) == c.file) {
          if (int err = base_->Unlink(c.path); err != 0) return ErrnoError("undo " + c.path, err);
        }
        break;
      case NameChange::kRename:
        if (current(c.path) == c.file) {
          if (int err = base_->Rename(c.path, c.from); err != 0) {
            return ErrnoError("undo rename to " + c.path, err);
          }
        }
        if (c.replaced && !IdOf(c.path))
          PACKICE_RETURN_IF_ERROR(Restore(c.path, *c.replaced, &reborn));
        break;
      case NameChange::kUnlink:
        if (c.replaced && !IdOf(c.path))
          PACKICE_RETURN_IF_ERROR(Restore(c.path, *c.replaced, &reborn));
        break;
      case NameChange::kMakeDir: {
        std::error_code ec;
        std::filesystem::remove_all(c.path, ec);
        if (ec) return Internal("undo mkdir " + c.path + ": " + ec.message());
        break;
      }
    }
  }
  return Status::Ok();
}

}  // namespace packice
