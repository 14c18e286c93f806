#include "services/kv/namespace_table.h"

#include <fcntl.h>

#include <algorithm>
#include <sstream>
#include <vector>

#include "core/validate.h"

namespace packice {

Status ValidateNamespacePath(std::string_view path) {
  constexpr size_t kMaxBytes = 256;
  constexpr size_t kMaxSegments = 32;
  auto bad = [&](const std::string& why) {
    std::string shown(path.substr(0, 80));
    return InvalidArgument("namespace path '" + shown + "': " + why);
  };
  if (path.empty() || path[0] != '/') return bad("must start with '/'");
  if (path.size() > kMaxBytes) return bad("longer than " + std::to_string(kMaxBytes) + " bytes");
  if (path.size() == 1) return bad("needs at least one segment after '/'");
  if (path.back() == '/') return bad("must not end with '/'");
  size_t segments = 0;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg.empty()) return bad("empty segment ('//')");
    if (seg == "." || seg == "..") return bad("'.' and '..' are not segments");
    if (!std::all_of(seg.begin(), seg.end(), IsNameChar)) {
      return bad("segments are made of A-Z a-z 0-9 . _ -");
    }
    if (++segments > kMaxSegments) return bad("more than 32 segments");
    start = end + 1;
  }
  return Status::Ok();
}

namespace kv {
namespace {

constexpr const char* kHeader = "packice-kv-namespaces 1";

}  // namespace

Status ValidateNamespaceOptions(const NamespaceOptions& o) {
  if (o.engine != KvEngine::kSwissTable && o.engine != KvEngine::kMemTable) {
    return InvalidArgument("unknown engine");
  }
  if (o.write_mode != KvWriteMode::kLinear && o.write_mode != KvWriteMode::kNoLinear) {
    return InvalidArgument("unknown write mode");
  }
  if (o.fsync != KvFsync::kAlways && o.fsync != KvFsync::kInterval && o.fsync != KvFsync::kNever) {
    return InvalidArgument("unknown fsync policy");
  }
  if (o.fsync_interval.count() < 1 || o.fsync_interval.count() > 60000) {
    return InvalidArgument("fsync interval must be 1 ms .. 60 s");
  }
  if (o.default_ttl.count() < 0) return InvalidArgument("negative default TTL");
  return Status::Ok();
}

std::string NamespaceTable::BucketDir(uint64_t id) const {
  return dir_ + "/buckets/" + std::to_string(id);
}

Result<NamespaceTable> NamespaceTable::Load(Env& env, const std::string& dir) {
  NamespaceTable t;
  t.dir_ = dir;
  const std::string path = dir + "/NAMESPACES";
  PACKICE_ASSIGN_OR_RETURN(std::optional<std::string> file, ReadFileIfExists(env, path));
  if (!file) return t;
  const std::string& text = *file;
  std::istringstream in(text);
  std::string line;
  auto corrupt = [&](const std::string& why) { return DataLoss(path + ": " + why); };
  if (!std::getline(in, line) || line != kHeader) return corrupt("bad header");
  if (!std::getline(in, line) || std::sscanf(line.c_str(), "next %lu", &t.next_id_) != 1) {
    return corrupt("bad 'next' line");
  }
  size_t count = 0;
  bool ended = false;
  while (std::getline(in, line)) {
    if (line.starts_with("end ")) {
      if (std::stoul(line.substr(4)) != count) return corrupt("count does not match");
      ended = true;
      break;
    }
    std::istringstream f(line);
    std::string tag, ns;
    NamespaceRecord r;
    int engine = 0, mode = 0, fsync = 0;
    int64_t interval = 0, ttl = 0;
    if (!(f >> tag >> r.id >> engine >> mode >> fsync >> interval >> ttl >> ns) || tag != "ns" ||
        !ValidateNamespacePath(ns).ok() || r.id >= t.next_id_) {
      return corrupt("bad line '" + line.substr(0, 80) + "'");
    }
    r.options.engine = static_cast<KvEngine>(engine);
    r.options.write_mode = static_cast<KvWriteMode>(mode);
    r.options.fsync = static_cast<KvFsync>(fsync);
    r.options.fsync_interval = Duration(interval);
    r.options.default_ttl = Duration(ttl);
    if (!ValidateNamespaceOptions(r.options).ok()) return corrupt("bad options of " + ns);
    if (!t.entries_.emplace(ns, r).second) return corrupt("namespace " + ns + " twice");
    ++count;
  }
  if (!ended) return corrupt("cut short (no 'end' line)");
  return t;
}

Status NamespaceTable::Write(Env& env,
                             const absl::flat_hash_map<std::string, NamespaceRecord>& entries,
                             uint64_t next_id) const {
  std::string text = std::string(kHeader) + "\nnext " + std::to_string(next_id) + "\n";
  for (const auto& [ns, r] : entries) {
    text += "ns " + std::to_string(r.id) + " " + std::to_string(int(r.options.engine)) + " " +
            std::to_string(int(r.options.write_mode)) + " " + std::to_string(int(r.options.fsync)) +
            " " + std::to_string(r.options.fsync_interval.count()) + " " +
            std::to_string(r.options.default_ttl.count()) + " " + ns + "\n";
  }
  text += "end " + std::to_string(entries.size()) + "\n";
  return ReplaceFile(env, dir_, "NAMESPACES", text);
}

Result<uint64_t> NamespaceTable::Add(Env& env, const std::string& path,
                                     const NamespaceOptions& options) {
  if (entries_.contains(path)) return AlreadyExists("namespace " + path + " exists");
  auto next = entries_;
  const uint64_t id = next_id_;
  next.emplace(path, NamespaceRecord{id, options});
  PACKICE_RETURN_IF_ERROR(Write(env, next, id + 1));
  entries_ = std::move(next);
  next_id_ = id + 1;
  return id;
}

Status NamespaceTable::Remove(Env& env, const std::string& path) {
  if (!entries_.contains(path)) return NotFound("no namespace " + path);
  auto next = entries_;
  next.erase(path);
  PACKICE_RETURN_IF_ERROR(Write(env, next, next_id_));
  entries_ = std::move(next);
  return Status::Ok();
}

}  // namespace kv
}  // namespace packice
