#include "services/cas/upload_table.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "core/io.h"

namespace packice {

struct UploadWriter::Entry {
  Entry(std::string n, const Digest& d) : name(std::move(n)), digest(d), hasher(d.algorithm) {}

  const std::string name;
  const Digest digest;
  Mutex mu;
  uint64_t committed ABSL_GUARDED_BY(mu) = 0;
  std::string memory ABSL_GUARDED_BY(mu);  // the bytes, when staged in memory
  UniqueFd file ABSL_GUARDED_BY(mu);       // the bytes, when staged in a file
  Hasher hasher ABSL_GUARDED_BY(mu);
  uint64_t writer ABSL_GUARDED_BY(mu) = 0;  // the ticket that may append; 0: none
  Clock::TimePoint idle_since ABSL_GUARDED_BY(mu);
  bool gone ABSL_GUARDED_BY(mu) = false;  // out of the table: no more appends
};

namespace {

std::string StagingDir(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// An unnamed read-write file in `dir`: O_TMPFILE where the file system has it, else a
// mkstemp(3) file unlinked at once.
Result<UniqueFd> OpenStagingFile(Env& env, const std::string& dir) {
  UniqueFd fd;
  int err = env.Open(dir, O_TMPFILE | O_RDWR, 0600, &fd);
  if (err == 0) return fd;
  if (err != EOPNOTSUPP && err != EISDIR && err != EINVAL) {
    return ErrnoError("open O_TMPFILE in " + dir, err);
  }
  std::string path = dir + "/packice-upload-XXXXXX";
  int raw = ::mkostemp(path.data(), O_CLOEXEC);
  if (raw < 0) return ErrnoError("mkstemp in " + dir, errno);
  UniqueFd owned(raw);
  if (int e = env.Unlink(path); e != 0) return ErrnoError("unlink " + path, e);
  return owned;
}

}  // namespace

// --- UploadWriter ----------------------------------------------------------------------------

UploadWriter::UploadWriter(UploadTable* table, std::shared_ptr<Entry> entry, uint64_t ticket)
    : table_(table), entry_(std::move(entry)), ticket_(ticket) {}

UploadWriter::~UploadWriter() { table_->Detach(entry_, ticket_); }

uint64_t UploadWriter::committed() const {
  MutexLock lock(&entry_->mu);
  return entry_->committed;
}

Status UploadWriter::Append(uint64_t offset, std::span<const std::byte> data) {
  Entry& e = *entry_;
  MutexLock lock(&e.mu);
  if (e.gone || e.writer != ticket_) {
    return Aborted("another Write took over this upload, or it was dropped");
  }
  if (offset != e.committed) {
    return InvalidArgument("write_offset " + std::to_string(offset) +
                           " is not the committed size " + std::to_string(e.committed));
  }
  if (data.size() > e.digest.size - e.committed) {
    return InvalidArgument("the upload carries more than the digest's " +
                           std::to_string(e.digest.size) + " bytes");
  }
  if (data.empty()) return Status::Ok();
  if (e.file.valid()) {
    PACKICE_RETURN_IF_ERROR(
        WriteFully(*table_->env_, e.file.get(), data, e.committed, "write staged upload"));
  } else {
    e.memory.append(reinterpret_cast<const char*>(data.data()), data.size());
  }
  e.hasher.Update(data);
  e.committed += data.size();
  return Status::Ok();
}

Status UploadWriter::Finish(const std::function<Status(std::span<const std::byte>)>& store) {
  std::string memory;
  UniqueFd file;
  Status result;
  {
    Entry& e = *entry_;
    MutexLock lock(&e.mu);
    if (e.gone || e.writer != ticket_) {
      return Aborted("another Write took over this upload, or it was dropped");
    }
    if (e.committed != e.digest.size) {
      return InvalidArgument("finish_write after " + std::to_string(e.committed) + " of " +
                             std::to_string(e.digest.size) + " bytes");
    }
    e.gone = true;  // no more appends: the bytes are ours to store, outside the lock
    const Digest got = e.hasher.Finish();
    if (got != e.digest) {
      result = DigestMismatch("the uploaded bytes are " + got.ToString() + ", not " +
                              e.digest.ToString());
    }
    memory = std::move(e.memory);
    file = std::move(e.file);
  }
  if (result.ok()) result = StoreStaged(memory, file, store);
  table_->Remove(entry_);
  return result;
}

Status UploadWriter::StoreStaged(const std::string& memory, const UniqueFd& file,
                                 const std::function<Status(std::span<const std::byte>)>& store) {
  const uint64_t size = entry_->digest.size;
  if (!file.valid() || size == 0) return store(std::as_bytes(std::span(memory)));
  PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<BlobView> view,
                           table_->env_->Map(file.get(), 0, RoundUpToPage(size), size,
                                             /*writable=*/false, /*populate=*/false));
  return store(view->bytes());
}

// --- UploadTable -----------------------------------------------------------------------------

UploadTable::UploadTable(UploadTableOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::System()),
      env_(options_.env != nullptr ? options_.env : Env::Default()) {}

UploadTable::~UploadTable() = default;

Result<std::unique_ptr<UploadWriter>> UploadTable::Attach(const std::string& name,
                                                          const Digest& digest, uint64_t offset) {
  MutexLock lock(&mu_);
  DropExpired();
  std::shared_ptr<Entry> entry = Live(name);
  if (entry != nullptr) {
    if (entry->digest != digest) {
      return InvalidArgument("upload '" + name + "' is of another digest");
    }
  } else {
    if (offset != 0) {
      return InvalidArgument("write_offset " + std::to_string(offset) +
                             " for an upload the node does not hold (committed size 0)");
    }
    PACKICE_ASSIGN_OR_RETURN(entry, NewEntry(name, digest));
  }
  const uint64_t ticket = next_ticket_++;
  MutexLock entry_lock(&entry->mu);
  if (offset != entry->committed) {
    return InvalidArgument("write_offset " + std::to_string(offset) +
                           " is not the committed size " + std::to_string(entry->committed));
  }
  entry->writer = ticket;
  return std::unique_ptr<UploadWriter>(new UploadWriter(this, entry, ticket));
}

std::shared_ptr<UploadTable::Entry> UploadTable::Live(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return nullptr;
  {
    MutexLock lock(&it->second->mu);
    if (!it->second->gone) return it->second;
  }
  Erase(name);  // being finished: a new upload of the name starts afresh
  return nullptr;
}

Result<std::shared_ptr<UploadTable::Entry>> UploadTable::NewEntry(const std::string& name,
                                                                  const Digest& digest) {
  PACKICE_RETURN_IF_ERROR(MakeRoom(digest.size));
  auto entry = std::make_shared<Entry>(name, digest);
  if (digest.size > options_.memory_threshold) {
    PACKICE_ASSIGN_OR_RETURN(UniqueFd fd, OpenStagingFile(*env_, StagingDir(options_.staging_dir)));
    MutexLock lock(&entry->mu);
    entry->file = std::move(fd);
  } else {
    MutexLock lock(&entry->mu);
    entry->memory.reserve(digest.size);
  }
  entries_.emplace(name, entry);
  staged_bytes_ += digest.size;
  return entry;
}

Status UploadTable::MakeRoom(uint64_t size) {
  if (size > options_.max_staged_bytes) {
    return OutOfCapacity("an upload of " + std::to_string(size) +
                         " bytes exceeds the node's staging limit of " +
                         std::to_string(options_.max_staged_bytes));
  }
  while (entries_.size() >= options_.max_uploads ||
         staged_bytes_ + size > options_.max_staged_bytes) {
    if (!DropOldestIdle()) {
      return OutOfCapacity("too many uploads in progress (" + std::to_string(entries_.size()) +
                           " holding " + std::to_string(staged_bytes_) + " bytes)");
    }
  }
  return Status::Ok();
}

bool UploadTable::DropOldestIdle() {
  const Entry* oldest = nullptr;
  Clock::TimePoint oldest_idle = Clock::TimePoint::max();
  for (const auto& [name, entry] : entries_) {
    MutexLock lock(&entry->mu);
    if (entry->writer == 0 && entry->idle_since < oldest_idle) {
      oldest = entry.get();
      oldest_idle = entry->idle_since;
    }
  }
  if (oldest == nullptr) return false;
  Erase(oldest->name);
  return true;
}

void UploadTable::DropExpired() {
  const Clock::TimePoint now = clock_->Now();
  std::vector<std::string> expired;
  for (const auto& [name, entry] : entries_) {
    MutexLock lock(&entry->mu);
    if (entry->writer == 0 && now - entry->idle_since >= options_.keep_partial) {
      expired.push_back(name);
    }
  }
  for (const std::string& name : expired) Erase(name);
}

void UploadTable::Erase(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  {
    MutexLock lock(&it->second->mu);
    it->second->gone = true;
  }
  staged_bytes_ -= it->second->digest.size;
  entries_.erase(it);
}

void UploadTable::Remove(const std::shared_ptr<Entry>& entry) {
  MutexLock lock(&mu_);
  auto it = entries_.find(entry->name);
  if (it != entries_.end() && it->second == entry) Erase(entry->name);
}

void UploadTable::Detach(const std::shared_ptr<Entry>& entry, uint64_t ticket) {
  const Clock::TimePoint now = clock_->Now();
  MutexLock lock(&entry->mu);
  if (entry->writer != ticket) return;
  entry->writer = 0;
  entry->idle_since = now;
}

Result<uint64_t> UploadTable::Query(const std::string& name) {
  MutexLock lock(&mu_);
  DropExpired();
  auto it = entries_.find(name);
  if (it == entries_.end()) return NotFound("no upload '" + name + "'");
  MutexLock entry_lock(&it->second->mu);
  return it->second->committed;
}

void UploadTable::Discard(const std::string& name) {
  MutexLock lock(&mu_);
  Erase(name);
}

size_t UploadTable::size() {
  MutexLock lock(&mu_);
  return entries_.size();
}

uint64_t UploadTable::staged_bytes() {
  MutexLock lock(&mu_);
  return staged_bytes_;
}

}  // namespace packice
