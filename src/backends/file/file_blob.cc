#include "backends/file/file_blob.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/io.h"

namespace packice {

Status FileSpace::Charge(uint64_t bytes) {
  MutexLock lock(&mu_);
  // Recovery may have counted more than the capacity: then nothing is free.
  const uint64_t free = capacity_bytes_ - std::min(used_, capacity_bytes_);
  if (bytes > free) {
    return OutOfCapacity("need " + std::to_string(bytes) + " bytes on disk, " +
                         std::to_string(free) + " of " + std::to_string(capacity_bytes_) + " free");
  }
  used_ += bytes;
  return Status::Ok();
}

void FileSpace::ChargeUnchecked(uint64_t bytes) {
  MutexLock lock(&mu_);
  used_ += bytes;
}

void FileSpace::Uncharge(uint64_t bytes) {
  MutexLock lock(&mu_);
  used_ -= bytes;
}

uint64_t FileSpace::used() const {
  MutexLock lock(&mu_);
  return used_;
}

Result<UniqueFd> OpenStoreDir(Env& env, const std::string& dir,
                              std::initializer_list<std::string_view> subdirs, bool sync) {
  // Parents too; an error shows below. New directories are synced into their parents: else a
  // crash could take a fresh store's directories, with what was made durable in them.
  MakeDirs(env, dir, 0700, sync).IgnoreError();
  struct stat st {};
  if (env.Stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return InvalidArgument(dir + " is not a directory");
  }
  const std::string lock_path = dir + "/LOCK";
  UniqueFd lock;
  if (int err = env.Open(lock_path, O_RDWR | O_CREAT, 0600, &lock); err != 0) {
    return ErrnoError("open " + lock_path, err);
  }
  if (flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return AlreadyExists("another process uses " + dir);
  }
  bool made = false;
  for (std::string_view sub : subdirs) {
    PACKICE_ASSIGN_OR_RETURN(bool m, MakeDirIfMissing(env, dir + "/" + std::string(sub), 0700));
    made |= m;
  }
  if (made && sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env, dir));
  return lock;
}

FileBlob::FileBlob(std::shared_ptr<FileSpace> space, std::string path, UniqueFd fd,
                   uint64_t data_offset, uint64_t size, uint64_t charge)
    : space_(std::move(space)),
      data_offset_(data_offset),
      charge_(charge),
      path_(std::move(path)),
      fd_(std::move(fd)),
      size_(size) {}

FileBlob::~FileBlob() {
  if (doomed_) (void)space_->env().Unlink(path_);
  space_->Uncharge(charge_);
}

uint64_t FileBlob::size() const {
  MutexLock lock(&mu_);
  return size_;
}

std::string FileBlob::path() const {
  MutexLock lock(&mu_);
  return path_;
}

Status FileBlob::Write(uint64_t offset, std::span<const std::byte> data) {
  MutexLock lock(&mu_);
  if (!fd_.valid()) return WrongState("a sealed file object cannot be written");
  if (offset > size_ || data.size() > size_ - offset) {  // past the end would grow the file
    return InvalidArgument("write of " + std::to_string(data.size()) + " bytes at " +
                           std::to_string(offset) + " outside an object of " +
                           std::to_string(size_) + " bytes");
  }
  return WriteFully(space_->env(), fd_.get(), data, data_offset_ + offset, "write " + path_);
}

Status FileBlob::Read(uint64_t offset, std::span<std::byte> out) {
  const uint64_t size = this->size();
  if (offset > size || out.size() > size - offset) {  // past the end: padding, or nothing
    return InvalidArgument("read of " + std::to_string(out.size()) + " bytes at " +
                           std::to_string(offset) + " outside an object of " +
                           std::to_string(size) + " bytes");
  }
  PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(LeaseMode::kRead));
  return ReadFully(space_->env(), fd.get(), out, data_offset_ + offset);
}

Result<std::shared_ptr<BlobView>> FileBlob::OpenView(LeaseMode mode) {
  PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenFd(mode));
  const uint64_t size = this->size();
  return space_->env().Map(fd.get(), data_offset_, RoundUpToPage(size), size,
                           mode == LeaseMode::kCreate, /*populate=*/false);
}

Result<BlobExport> FileBlob::Export(LeaseMode mode) {
  BlobExport ex;
  ex.kind = BlobExport::Kind::kFd;
  PACKICE_ASSIGN_OR_RETURN(ex.fd, OpenFd(mode));
  ex.offset = data_offset_;
  ex.map_size = RoundUpToPage(size());
  return ex;
}

Status FileBlob::Commit(std::span<const std::byte> header, uint64_t size,
                        const std::string& final_path, const std::string& final_dir, bool sync,
                        bool no_replace) {
  MutexLock lock(&mu_);
  if (!fd_.valid()) return WrongState("object file already committed");
  if (header.size() > data_offset_) return Internal("object header outgrew its reserved space");
  Env& env = space_->env();
  if (!header.empty()) {
    PACKICE_RETURN_IF_ERROR(WriteFully(env, fd_.get(), header, 0, "write header " + path_));
  }
  if (size < size_) {
    if (int err = env.Truncate(fd_.get(), data_offset_ + size); err != 0) {
      return ErrnoError("truncate " + path_, err);
    }
    size_ = size;
    // The file shrank, and so does its charge: what a restart would count for it.
    const uint64_t charge = data_offset_ + RoundUpToPage(size);
    if (charge < charge_) {
      space_->Uncharge(charge_ - charge);
      charge_ = charge;
    }
  }
  if (int err = sync ? env.SyncData(fd_.get()) : 0; err != 0) {
    return ErrnoError("fdatasync " + path_, err);
  }
  (void)env.Chmod(fd_.get(), S_IRUSR);  // sealed: read-only even for a client that reopens it
  if (no_replace) {
    if (int err = env.Link(path_, final_path); err != 0) {
      if (err == EEXIST) return AlreadyExists(final_path + " exists");
      return ErrnoError("link " + path_ + " to " + final_path, err);
    }
    (void)env.Unlink(path_);  // a crash before this leaves a name in tmp, which start-up empties
  } else if (int err = env.Rename(path_, final_path); err != 0) {
    return ErrnoError("rename " + path_ + " to " + final_path, err);
  }
  path_ = final_path;
  fd_.reset();
  if (sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env, final_dir));
  return Status::Ok();
}

void FileBlob::Doom() {
  MutexLock lock(&mu_);
  if (doomed_) return;
  doomed_ = true;
  if (fd_.valid()) return;  // never committed: already in tmp
  // A name of its own in tmp: a store may doom several files of one final name over time.
  static std::atomic<uint64_t> dooms{0};
  const std::string dead =
      space_->tmp_dir() + "/d" + std::to_string(++dooms) + "-" + path_.substr(path_.rfind('/') + 1);
  if (int err = space_->env().Rename(path_, dead); err != 0) {
    spdlog::warn("event=doom_rename_failed file={} error=\"{}\"", path_, std::strerror(err));
    return;  // unlinked where it is when the blob goes
  }
  path_ = dead;
}

Result<UniqueFd> FileBlob::OpenFd(LeaseMode mode) {
  MutexLock lock(&mu_);
  if (mode == LeaseMode::kCreate) {
    if (!fd_.valid()) return WrongState("object is sealed");
    UniqueFd fd(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd.valid()) return ErrnoError("dup", errno);
    return fd;
  }
  UniqueFd fd;
  if (int err = space_->env().Open(path_, O_RDONLY, 0, &fd); err != 0) {
    return ErrnoError("open " + path_, err);
  }
  return fd;
}

}  // namespace packice
