#include "core/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "core/mapped_view.h"

namespace packice {
namespace {

// The real file system: each call is the system call, EINTR retried where it can happen.
class PosixEnv final : public Env {
 public:
  int Open(const std::string& path, int flags, mode_t mode, UniqueFd* fd) override {
    int r;
    do {
      r = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return errno;
    *fd = UniqueFd(r);
    return 0;
  }

  int Write(int fd, std::span<const std::byte> data, uint64_t offset, size_t* written) override {
    ssize_t n;
    do {
      n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    *written = static_cast<size_t>(n);
    return 0;
  }

  int Read(int fd, std::span<std::byte> out, uint64_t offset, size_t* read) override {
    ssize_t n;
    do {
      n = ::pread(fd, out.data(), out.size(), static_cast<off_t>(offset));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno;
    *read = static_cast<size_t>(n);
    return 0;
  }

  int Truncate(int fd, uint64_t size) override {
    return Retry([&] { return ::ftruncate(fd, static_cast<off_t>(size)); });
  }
  int Allocate(int fd, uint64_t size) override {
    return Retry([&] { return ::fallocate(fd, 0, 0, static_cast<off_t>(size)); });
  }
  int SyncData(int fd) override {
    return Retry([&] { return ::fdatasync(fd); });
  }
  int SyncDir(const std::string& dir) override {
    UniqueFd fd;
    if (int err = Open(dir, O_RDONLY | O_DIRECTORY, 0, &fd); err != 0) return err;
    return Retry([&] { return ::fsync(fd.get()); });
  }
  int Chmod(int fd, mode_t mode) override {
    return Retry([&] { return ::fchmod(fd, mode); });
  }
  int Fstat(int fd, struct stat* st) override {
    return Retry([&] { return ::fstat(fd, st); });
  }
  int Stat(const std::string& path, struct stat* st) override {
    return Retry([&] { return ::stat(path.c_str(), st); });
  }
  int Rename(const std::string& from, const std::string& to) override {
    return Retry([&] { return ::rename(from.c_str(), to.c_str()); });
  }
  int Link(const std::string& from, const std::string& to) override {
    return Retry([&] { return ::link(from.c_str(), to.c_str()); });
  }
  int Unlink(const std::string& path) override {
    return Retry([&] { return ::unlink(path.c_str()); });
  }
  int MakeDir(const std::string& dir, mode_t mode) override {
    return Retry([&] { return ::mkdir(dir.c_str(), mode); });
  }

  int ListDir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return errno;
    names->clear();
    while (dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name != "." && name != "..") names->emplace_back(name);
    }
    ::closedir(d);
    return 0;
  }

  Result<std::shared_ptr<BlobView>> Map(int fd, uint64_t offset, uint64_t map_size, uint64_t size,
                                        bool writable, bool populate) override {
    return MapView(fd, offset, map_size, size, writable, populate);
  }

 private:
  // Runs a call that returns -1 and sets errno, retrying EINTR; the errno, or 0.
  template <typename Fn>
  static int Retry(Fn&& fn) {
    while (fn() != 0) {
      if (errno != EINTR) return errno;
    }
    return 0;
  }
};

}  // namespace

std::shared_ptr<Env> Env::Default() {
  static const auto* env = new std::shared_ptr<Env>(std::make_shared<PosixEnv>());
  return *env;
}

Status WriteFully(Env& env, int fd, std::span<const std::byte> data, uint64_t offset,
                  std::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    size_t n = 0;
    if (int err = env.Write(fd, data.subspan(done), offset + done, &n); err != 0) {
      return ErrnoError(what, err);
    }
    if (n == 0) return Internal(std::string(what) + ": no progress (0 bytes written)");
    done += n;
  }
  return Status::Ok();
}

Status ReadFully(Env& env, int fd, std::span<std::byte> out, uint64_t offset,
                 std::string_view what) {
  size_t done = 0;
  while (done < out.size()) {
    size_t n = 0;
    if (int err = env.Read(fd, out.subspan(done), offset + done, &n); err != 0) {
      return ErrnoError(what, err);
    }
    if (n == 0) return Internal("unexpected end of file");
    done += n;
  }
  return Status::Ok();
}

Status SyncDirStatus(Env& env, const std::string& dir) {
  if (int err = env.SyncDir(dir); err != 0) return ErrnoError("fsync " + dir, err);
  return Status::Ok();
}

Status ReplaceFile(Env& env, const std::string& dir, const std::string& name,
                   std::string_view bytes) {
  const std::string tmp = dir + "/" + name + ".tmp";
  const std::string path = dir + "/" + name;
  UniqueFd fd;
  int err = env.Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, &fd);
  if (err != 0) return ErrnoError("open " + tmp, err);
  PACKICE_RETURN_IF_ERROR(WriteFully(env, fd.get(), std::as_bytes(std::span(bytes)), 0, tmp));
  if ((err = env.SyncData(fd.get())) != 0) return ErrnoError("fdatasync " + tmp, err);
  if ((err = env.Rename(tmp, path)) != 0) return ErrnoError("rename " + tmp, err);
  return SyncDirStatus(env, dir);
}

Result<std::optional<std::string>> ReadFileIfExists(Env& env, const std::string& path) {
  UniqueFd fd;
  int err = env.Open(path, O_RDONLY, 0, &fd);
  if (err == ENOENT) return std::optional<std::string>();
  if (err != 0) return ErrnoError("open " + path, err);
  struct stat st;
  if ((err = env.Fstat(fd.get(), &st)) != 0) return ErrnoError("fstat " + path, err);
  std::string text(static_cast<size_t>(st.st_size), '\0');
  PACKICE_RETURN_IF_ERROR(
      ReadFully(env, fd.get(), std::as_writable_bytes(std::span(text)), 0, "read " + path));
  return std::optional<std::string>(std::move(text));
}

Result<bool> MakeDirIfMissing(Env& env, const std::string& dir, mode_t mode) {
  const int err = env.MakeDir(dir, mode);
  if (err == EEXIST) return false;
  if (err != 0) return ErrnoError("mkdir " + dir, err);
  return true;
}

Status MakeDirs(Env& env, const std::string& path, mode_t mode, bool sync) {
  std::string dir = path;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  struct stat st {};
  if (dir.empty() || env.Stat(dir, &st) == 0) return Status::Ok();
  const size_t slash = dir.find_last_of('/');
  const std::string parent =
      slash == std::string::npos ? "." : (slash == 0 ? "/" : dir.substr(0, slash));
  if (slash != std::string::npos && slash + 1 < dir.size()) {
    PACKICE_RETURN_IF_ERROR(MakeDirs(env, parent, mode, sync));
  }
  PACKICE_ASSIGN_OR_RETURN(bool made, MakeDirIfMissing(env, dir, mode));
  if (made && sync) PACKICE_RETURN_IF_ERROR(SyncDirStatus(env, parent));
  return Status::Ok();
}

std::vector<std::string> NamesWithSuffix(Env& env, const std::string& dir,
                                         std::string_view suffix) {
  std::vector<std::string> all, names;
  if (env.ListDir(dir, &all) != 0) return names;
  for (std::string& name : all) {
    if (name.ends_with(suffix)) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace packice
