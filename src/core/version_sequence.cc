#include "packice/version_sequence.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include "core/io.h"

namespace packice {
namespace {

constexpr std::string_view kMarkPrefix = "packice-version-mark ";

// Reads the mark in `path`: 0 when the file does not exist.
Result<uint64_t> ReadMark(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return uint64_t{0};
    return ErrnoError("open " + path, errno);
  }
  char buf[64];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) < 0 && errno == EINTR) {
  }
  const int err = errno;
  close(fd);
  if (n < 0) return ErrnoError("read " + path, err);
  std::string_view text(buf, static_cast<size_t>(n));
  uint64_t mark = 0;
  if (!text.starts_with(kMarkPrefix) || !text.ends_with('\n')) {
    return ProtocolError(path + " is not a version mark");
  }
  text.remove_prefix(kMarkPrefix.size());
  text.remove_suffix(1);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), mark);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return ProtocolError(path + " is not a version mark");
  }
  return mark;
}

Status SyncDirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open " + dir, errno);
  const int rc = fsync(fd);
  const int err = errno;
  close(fd);
  return rc == 0 ? Status::Ok() : ErrnoError("fsync " + dir, err);
}

}  // namespace

VersionSequence::VersionSequence(std::string path, uint64_t block, uint64_t mark)
    : path_(std::move(path)), block_(block), last_(mark), reserved_(mark) {}

Result<std::shared_ptr<VersionSequence>> VersionSequence::OpenDurable(const std::string& path,
                                                                      uint64_t block) {
  if (block == 0) return InvalidArgument("a version block must hold at least one version");
  PACKICE_ASSIGN_OR_RETURN(uint64_t mark, ReadMark(path));
  // Every version up to the mark may have been handed out before a crash: start above it.
  return std::shared_ptr<VersionSequence>(new VersionSequence(path, block, mark));
}

Result<uint64_t> VersionSequence::Next() {
  std::lock_guard lock(mu_);
  if (last_ == UINT64_MAX) return Internal("object versions are exhausted");
  if (last_ + 1 > reserved_) {
    const uint64_t mark = last_ + std::min(block_, UINT64_MAX - last_);
    PACKICE_RETURN_IF_ERROR(WriteMarkLocked(mark));
    reserved_ = mark;
  }
  return ++last_;
}

void VersionSequence::Observe(uint64_t version) {
  std::lock_guard lock(mu_);
  if (version > last_) last_ = version;
}

uint64_t VersionSequence::last() {
  std::lock_guard lock(mu_);
  return last_;
}

Status VersionSequence::WriteMarkLocked(uint64_t mark) {
  const std::string tmp = path_ + ".tmp";
  const std::string text = std::string(kMarkPrefix) + std::to_string(mark) + "\n";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError("create " + tmp, errno);
  Status s = PwriteFully(fd, std::as_bytes(std::span(text.data(), text.size())), 0);
  if (s.ok() && fsync(fd) != 0) s = ErrnoError("fsync " + tmp, errno);
  close(fd);
  if (s.ok() && rename(tmp.c_str(), path_.c_str()) != 0) s = ErrnoError("rename " + tmp, errno);
  if (s.ok()) s = SyncDirOf(path_);
  if (!s.ok()) unlink(tmp.c_str());
  return s;
}

}  // namespace packice
