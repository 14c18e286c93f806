// packice._packice's queue: a thin layer over the C++ queue client (include/packice/queue.h,
// ConnectQueue, QueueWriter, QueueReader). The Pythonic half — records as dataclasses, dict
// values, the asyncio forms, docstrings — is python/packice/queue.py.
//
// Every call that waits for the node runs with the GIL released. Records cross as tuples:
// in (key bytes or None, [(name, value)], value bytes, timestamp_unix_ms) and out (bucket,
// offset, key or None, [(name, value)], value, timestamp_unix_ms), names and values bytes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "binding.h"
#include "packice/queue.h"

namespace packice_py {
namespace {

using InRecord = std::tuple<std::optional<std::string>,
                            std::vector<std::pair<std::string, std::string>>, std::string, int64_t>;

packice::QueueRecord Record(InRecord in) {
  auto& [key, headers, value, ts] = in;
  return {std::move(key), std::move(headers), std::move(value), ts};
}

std::vector<packice::QueueRecord> Records(std::vector<InRecord> in) {
  std::vector<packice::QueueRecord> out;
  out.reserve(in.size());
  for (InRecord& r : in) out.push_back(Record(std::move(r)));
  return out;
}

// REQUIRES: the GIL is held.
py::list Out(const std::vector<packice::BucketRecords>& got) {
  py::list out;
  for (const packice::BucketRecords& b : got) {
    for (const packice::StoredRecord& s : b.records) {
      py::list headers;
      for (const auto& [n, v] : s.record.headers)
        headers.append(py::make_tuple(Bytes(n), Bytes(v)));
      out.append(py::make_tuple(b.bucket, s.offset,
                                s.record.key ? py::object(Bytes(*s.record.key)) : py::none(),
                                headers, Bytes(s.record.value), s.record.timestamp_unix_ms));
    }
  }
  return out;
}

class QueueWriterHandle {
 public:
  explicit QueueWriterHandle(packice::QueueWriter w) : w_(std::move(w)) {}
  std::tuple<uint32_t, uint64_t> put(InRecord record) {
    packice::QueueRecord r = Record(std::move(record));
    auto at = WithoutGil([&] { return w_.Put(std::move(r)); });
    const packice::AppendResult placed = Take(std::move(at));
    return {placed.bucket, placed.offset};
  }
  std::vector<std::tuple<uint32_t, uint64_t>> put_batch(std::vector<InRecord> in) {
    auto records = Records(std::move(in));
    auto at = WithoutGil([&] { return w_.PutBatch(records); });
    std::vector<std::tuple<uint32_t, uint64_t>> out;
    for (const packice::AppendResult& r : Take(std::move(at))) out.emplace_back(r.bucket, r.offset);
    return out;
  }
  uint32_t buckets() const { return w_.buckets(); }

 private:
  packice::QueueWriter w_;
};

// A QueueReader is for one thread at a time: calls from several Python threads take turns.
class QueueReaderHandle {
 public:
  explicit QueueReaderHandle(packice::QueueReader r) : r_(std::move(r)) {}
  py::list get(size_t limit, int64_t wait_ms) {
    if (wait_ms < 0) Raise(packice::InvalidArgument("a negative wait"));
    auto got = WithoutGil([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return r_.Get(limit, std::chrono::milliseconds(wait_ms));
    });
    return Out(Take(std::move(got)));
  }
  void commit() {
    Check(WithoutGil([&] {
      std::lock_guard<std::mutex> lock(mu_);
      return r_.Commit();
    }));
  }
  std::vector<std::tuple<uint32_t, uint64_t>> positions() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::tuple<uint32_t, uint64_t>> out;
    for (const packice::QueuePosition& p : r_.positions()) out.emplace_back(p.bucket, p.offset);
    return out;
  }

 private:
  std::mutex mu_;
  packice::QueueReader r_;
};

class QueueClient {
 public:
  explicit QueueClient(std::shared_ptr<packice::Queue> q) : q_(std::move(q)) {}

  void create_topic(const std::string& name, uint32_t buckets, int fsync, int64_t fsync_interval_ms,
                    uint64_t segment_bytes, uint64_t retention_bytes, int64_t retention_age_ms,
                    const std::string& storage) {
    packice::TopicOptions o;
    o.buckets = buckets;
    if (fsync < 0 || fsync > static_cast<int>(packice::QueueFsync::kNever)) {
      Raise(packice::InvalidArgument("unknown fsync policy"));
    }
    o.fsync = static_cast<packice::QueueFsync>(fsync);
    if (fsync_interval_ms > 0) o.fsync_interval = std::chrono::milliseconds(fsync_interval_ms);
    if (segment_bytes > 0) o.segment_bytes = segment_bytes;
    o.retention_bytes = retention_bytes;
    o.retention_age = std::chrono::milliseconds(retention_age_ms);
    o.storage = Take(packice::ParseQueueStorage(storage));
    Check(WithoutGil([&] { return q_->CreateTopic(name, o); }));
  }
  void delete_topic(const std::string& name) {
    Check(WithoutGil([&] { return q_->DeleteTopic(name); }));
  }
  // [(name, buckets, fsync, fsync_interval_ms, segment_bytes, retention_bytes, retention_age_ms,
  //   storage)]
  py::list topics() {
    auto got = Take(WithoutGil([&] { return q_->ListTopics(); }));
    py::list out;
    for (const packice::TopicInfo& t : got) {
      const packice::TopicOptions& o = t.options;
      out.append(py::make_tuple(t.name, o.buckets, static_cast<int>(o.fsync),
                                o.fsync_interval.count(), o.segment_bytes, o.retention_bytes,
                                o.retention_age.count(),
                                std::string(packice::QueueStorageName(o.storage))));
    }
    return out;
  }
  // [dict per bucket], [(group, bucket, offset)]
  py::tuple stat(const std::string& name) {
    auto [buckets, groups] =
        WithoutGil([&] { return std::make_pair(q_->Buckets(name), q_->Groups(name)); });
    py::list b_out;
    for (const packice::BucketInfo& b : Take(std::move(buckets))) {
      py::dict d;
      d["bucket"] = b.bucket;
      d["start_offset"] = b.start_offset;
      d["end_offset"] = b.end_offset;
      d["bytes"] = b.bytes;
      d["records_in"] = b.records_in;
      d["bytes_in"] = b.bytes_in;
      d["records_out"] = b.records_out;
      d["bytes_out"] = b.bytes_out;
      b_out.append(d);
    }
    py::list g_out;
    for (const packice::GroupPosition& g : Take(std::move(groups))) {
      g_out.append(py::make_tuple(g.group, g.bucket, g.offset));
    }
    return py::make_tuple(b_out, g_out);
  }
  uint64_t append(const std::string& topic, uint32_t bucket, std::vector<InRecord> in) {
    auto records = Records(std::move(in));
    return Take(WithoutGil([&] { return q_->Append(topic, bucket, records); }));
  }
  py::list read(const std::string& topic, std::vector<std::pair<uint32_t, uint64_t>> from,
                size_t limit, int64_t wait_ms) {
    if (wait_ms < 0) Raise(packice::InvalidArgument("a negative wait"));
    std::vector<packice::QueuePosition> positions;
    for (auto [b, o] : from) positions.push_back({b, o});
    auto got = WithoutGil(
        [&] { return q_->Read(topic, positions, limit, std::chrono::milliseconds(wait_ms)); });
    return Out(Take(std::move(got)));
  }
  void commit(const std::string& topic, const std::string& group, uint32_t bucket,
              uint64_t offset) {
    Check(WithoutGil([&] { return q_->Commit(topic, group, bucket, offset); }));
  }
  void export_topic(const std::string& topic, const std::string& path) {
    Check(WithoutGil([&] { return packice::ExportTopic(*q_, topic, path); }));
  }
  void import_topic(const std::string& topic, const std::string& path) {
    Check(WithoutGil([&] { return packice::ImportTopic(*q_, topic, path); }));
  }
  // Schemas travel as their JSON text (QueueSchemaJson); queue.py turns them into dicts.
  uint32_t set_schema(const std::string& topic, const std::string& json) {
    packice::QueueSchema schema = Take(packice::ParseQueueSchema(json));
    return Take(WithoutGil([&] { return q_->SetSchema(topic, schema); }));
  }
  std::vector<std::string> schemas(const std::string& topic) {
    auto versions = Take(WithoutGil([&] { return q_->Schemas(topic); }));
    std::vector<std::string> out;
    for (const packice::QueueSchema& v : versions) out.push_back(packice::QueueSchemaJson(v));
    return out;
  }
  std::unique_ptr<QueueWriterHandle> writer(const std::string& topic) {
    auto w = WithoutGil([&] { return packice::QueueWriter::Open(q_, topic); });
    return std::make_unique<QueueWriterHandle>(Take(std::move(w)));
  }
  std::unique_ptr<QueueReaderHandle> reader(const std::string& topic, const std::string& group) {
    auto r = WithoutGil([&] { return packice::QueueReader::Open(q_, topic, group); });
    return std::make_unique<QueueReaderHandle>(Take(std::move(r)));
  }

 private:
  std::shared_ptr<packice::Queue> q_;
};

std::unique_ptr<QueueClient> ConnectQueueClient(const std::string& url) {
  auto q = WithoutGil([&] { return packice::ConnectQueue(url); });
  return std::make_unique<QueueClient>(Take(std::move(q)));
}

}  // namespace

void BindQueue(py::module_& m) {
  py::class_<QueueWriterHandle>(m, "QueueWriter")
      .def("put", &QueueWriterHandle::put, py::arg("record"))
      .def("put_batch", &QueueWriterHandle::put_batch, py::arg("records"))
      .def_property_readonly("buckets", &QueueWriterHandle::buckets);
  py::class_<QueueReaderHandle>(m, "QueueReader")
      .def("get", &QueueReaderHandle::get, py::arg("limit"), py::arg("wait_ms"))
      .def("commit", &QueueReaderHandle::commit)
      .def_property_readonly("positions", &QueueReaderHandle::positions);
  py::class_<QueueClient>(m, "QueueClient")
      .def("create_topic", &QueueClient::create_topic, py::arg("name"), py::arg("buckets"),
           py::arg("fsync"), py::arg("fsync_interval_ms"), py::arg("segment_bytes"),
           py::arg("retention_bytes"), py::arg("retention_age_ms"), py::arg("storage") = "log")
      .def("delete_topic", &QueueClient::delete_topic, py::arg("name"))
      .def("topics", &QueueClient::topics)
      .def("stat", &QueueClient::stat, py::arg("name"))
      .def("append", &QueueClient::append, py::arg("topic"), py::arg("bucket"), py::arg("records"))
      .def("read", &QueueClient::read, py::arg("topic"), py::arg("positions"), py::arg("limit"),
           py::arg("wait_ms"))
      .def("commit", &QueueClient::commit, py::arg("topic"), py::arg("group"), py::arg("bucket"),
           py::arg("offset"))
      .def("export_topic", &QueueClient::export_topic, py::arg("topic"), py::arg("path"))
      .def("import_topic", &QueueClient::import_topic, py::arg("topic"), py::arg("path"))
      .def("set_schema", &QueueClient::set_schema, py::arg("topic"), py::arg("json"))
      .def("schemas", &QueueClient::schemas, py::arg("topic"))
      .def("writer", &QueueClient::writer, py::keep_alive<0, 1>(), py::arg("topic"))
      .def("reader", &QueueClient::reader, py::keep_alive<0, 1>(), py::arg("topic"),
           py::arg("group"));
  m.def("connect_queue", &ConnectQueueClient, py::arg("url"));
}

}  // namespace packice_py
