#include "packice/version_sequence.h"

#include <fcntl.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include "core/env.h"

namespace packice {
namespace {

constexpr std::string_view kMarkPrefix = "packice-version-mark ";

// Reads the mark in `path`: 0 when the file does not exist.
Result<uint64_t> ReadMark(Env& env, const std::string& path) {
  UniqueFd fd;
  if (int e = env.Open(path, O_RDONLY, 0, &fd); e != 0) {
    if (e == ENOENT) return uint64_t{0};
    return ErrnoError("open " + path, e);
  }
  char buf[64];
  size_t n = 0;
  if (int e = env.Read(fd.get(), std::as_writable_bytes(std::span(buf)), 0, &n); e != 0) {
    return ErrnoError("read " + path, e);
  }
  std::string_view text(buf, n);
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

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash + 1);
}

}  // namespace

VersionSequence::VersionSequence(std::string path, uint64_t block, uint64_t mark,
                                 std::shared_ptr<Env> env)
    : path_(std::move(path)), block_(block), env_(std::move(env)), last_(mark), reserved_(mark) {}

Result<std::shared_ptr<VersionSequence>> VersionSequence::OpenDurable(const std::string& path,
                                                                      uint64_t block,
                                                                      std::shared_ptr<Env> env) {
  if (block == 0) return InvalidArgument("a version block must hold at least one version");
  if (!env) env = Env::Default();
  PACKICE_ASSIGN_OR_RETURN(uint64_t mark, ReadMark(*env, path));
  // Every version up to the mark may have been handed out before a crash: start above it.
  return std::shared_ptr<VersionSequence>(new VersionSequence(path, block, mark, std::move(env)));
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
  UniqueFd fd;
  if (int e = env_->Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, &fd); e != 0) {
    return ErrnoError("create " + tmp, e);
  }
  Status s = WriteFully(*env_, fd.get(), std::as_bytes(std::span(text.data(), text.size())), 0);
  if (int e = s.ok() ? env_->SyncData(fd.get()) : 0; e != 0) s = ErrnoError("fdatasync " + tmp, e);
  fd.reset();
  if (int e = s.ok() ? env_->Rename(tmp, path_) : 0; e != 0) s = ErrnoError("rename " + tmp, e);
  if (s.ok()) s = SyncDirStatus(*env_, DirOf(path_));
  if (!s.ok()) static_cast<void>(env_->Unlink(tmp));  // best effort: a leftover is rewritten
  return s;
}

}  // namespace packice
