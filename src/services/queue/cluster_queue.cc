#include "services/queue/cluster_queue.h"

#include <algorithm>
#include <sstream>
#include <thread>

#include "backends/queue/record_codec.h"
#include "core/validate.h"

namespace packice {

struct ClusterQueue::Remote {
  std::mutex mu;  // held while the notifies run: a subscription dropped is not running after
  std::map<uint64_t, std::function<void()>> notify;
  uint64_t next = 0;
};

namespace {

std::string JoinOwners(const std::vector<std::string>& owners) {
  std::string out;
  for (const std::string& o : owners) out += (out.empty() ? "" : " ") + o;
  return out;
}

Result<std::vector<std::string>> SplitOwners(std::string_view topic, const std::string& record) {
  std::vector<std::string> owners;
  std::istringstream in(record);
  for (std::string id; in >> id;) owners.push_back(std::move(id));
  if (owners.empty()) {
    return DataLoss("queue: the cluster's record of topic " + std::string(topic) +
                    " names no owners");
  }
  return owners;
}

}  // namespace

ClusterQueue::ClusterQueue(std::shared_ptr<Queue> local, std::shared_ptr<OwnerDirectory> directory,
                           std::chrono::milliseconds poll_interval)
    : local_(std::move(local)),
      directory_(std::move(directory)),
      remote_(std::make_shared<Remote>()),
      poller_(std::make_unique<PeriodicThread>(poll_interval, [this] { PollRemote(); })) {}

ClusterQueue::~ClusterQueue() { poller_.reset(); }

void ClusterQueue::Update(std::string self_id, Ring ring, Members members) {
  std::lock_guard<std::mutex> lock(mu_);
  self_ = std::move(self_id);
  ring_ = std::move(ring);
  members_ = std::move(members);
}

std::string ClusterQueue::PartName(std::string_view topic, uint32_t bucket) {
  return std::string(topic) + "@" + std::to_string(bucket);
}

ClusterQueue::Stats ClusterQueue::GetStats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

Result<std::vector<std::string>> ClusterQueue::Owners(std::string_view topic, bool refresh) {
  if (topic.find('@') != std::string_view::npos) {
    return InvalidArgument("topic name '" + std::string(topic.substr(0, 80)) +
                           "': '@' is not a name character here");
  }
  std::optional<std::string> record = refresh ? std::nullopt : directory_->Owner(topic);
  if (!record) {
    PACKICE_RETURN_IF_ERROR(directory_->Refresh());
    record = directory_->Owner(topic);
  }
  if (!record) return NotFound("no topic " + std::string(topic));
  return SplitOwners(topic, *record);
}

Result<std::shared_ptr<Queue>> ClusterQueue::QueueOf(const std::string& owner) {
  bool local = false;
  std::shared_ptr<Queue> queue;
  {
    std::lock_guard<std::mutex> lock(mu_);
    local = owner == self_;
    if (!local) {
      auto it = members_.find(owner);
      if (it != members_.end()) queue = it->second;
    }
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++(local ? stats_.local_calls : stats_.forwarded_calls);
  }
  if (local) return local_;
  if (queue == nullptr) {
    return Unavailable("queue: node " + owner +
                       ", which owns the bucket, is not in the cluster now");
  }
  return queue;
}

Status ClusterQueue::OnBucket(std::string_view topic, uint32_t bucket,
                              const std::function<Status(Queue&, const std::string&)>& call) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  for (int attempt = 0;; ++attempt) {
    if (bucket >= owners.size()) {
      return InvalidArgument("topic " + std::string(topic) + " has buckets 0.." +
                             std::to_string(owners.size() - 1) + ", not " + std::to_string(bucket));
    }
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Queue> q, QueueOf(owners[bucket]));
    Status s = call(*q, PartName(topic, bucket));
    if (s.code() != StatusCode::kNotFound || attempt > 0) return s;
    Result<std::vector<std::string>> now = Owners(topic, true);
    if (!now.ok() || *now == owners) return now.ok() ? s : now.status();
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.stale_routes;
    }
    owners = *std::move(now);
  }
}

Status ClusterQueue::CreateTopic(std::string_view topic, const TopicOptions& options) {
  if (topic.empty() || topic.size() > 128 || topic == "." || topic == ".." ||
      !std::all_of(topic.begin(), topic.end(), IsNameChar)) {
    return InvalidArgument("topic name '" + std::string(topic.substr(0, 80)) +
                           "': 1..128 of A-Z a-z 0-9 . _ - (not '.' or '..')");
  }
  if (options.buckets < 1 || options.buckets > 1024) {
    return InvalidArgument("a topic has 1..1024 buckets, not " + std::to_string(options.buckets));
  }
  // The local queue checks the name and the options before anything is recorded.
  TopicOptions part = options;
  part.buckets = 1;
  std::vector<std::string> owners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ring_.empty()) return Unavailable("queue: this node is not on the cluster's ring yet");
    for (uint32_t b = 0; b < options.buckets; ++b) {
      owners.emplace_back(*ring_.Owner(PartName(topic, b)));
    }
  }
  PACKICE_ASSIGN_OR_RETURN(std::string recorded, directory_->Claim(topic, JoinOwners(owners)));
  if (recorded != JoinOwners(owners))
    return AlreadyExists("topic " + std::string(topic) + " exists");
  size_t existed = 0;
  for (uint32_t b = 0; b < options.buckets; ++b) {
    Result<std::shared_ptr<Queue>> q = QueueOf(owners[b]);
    Status s = q.ok() ? (*q)->CreateTopic(PartName(topic, b), part) : q.status();
    if (s.code() == StatusCode::kAlreadyExists) {
      ++existed;
      continue;
    }
    if (s.code() == StatusCode::kInvalidArgument && b == 0) {
      directory_->Release(topic).IgnoreError();  // bad options: nothing made, the name is free
      return s;
    }
    if (!s.ok()) return s;  // recorded: the next create of this topic finishes it
  }
  if (existed == options.buckets) return AlreadyExists("topic " + std::string(topic) + " exists");
  return Status::Ok();
}

Status ClusterQueue::DeleteTopic(std::string_view topic) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  for (uint32_t b = 0; b < owners.size(); ++b) {
    PACKICE_ASSIGN_OR_RETURN(std::shared_ptr<Queue> q, QueueOf(owners[b]));
    Status s = q->DeleteTopic(PartName(topic, b));
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  return directory_->Release(topic);
}

Result<std::vector<TopicInfo>> ClusterQueue::ListTopics() {
  PACKICE_RETURN_IF_ERROR(directory_->Refresh());
  // Every reachable node's parts, once each.
  std::map<std::string, TopicOptions> parts;
  std::vector<std::shared_ptr<Queue>> queues = {local_};
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, q] : members_) queues.push_back(q);
  }
  for (const std::shared_ptr<Queue>& q : queues) {
    Result<std::vector<TopicInfo>> list = q->ListTopics();
    if (!list.ok()) continue;  // a node away: its parts are not listed
    for (TopicInfo& t : *list) parts.emplace(std::move(t.name), t.options);
  }
  std::vector<TopicInfo> out;
  for (const auto& [name, record] : directory_->List()) {
    Result<std::vector<std::string>> owners = SplitOwners(name, record);
    if (!owners.ok()) continue;
    for (uint32_t b = 0; b < owners->size(); ++b) {
      auto it = parts.find(PartName(name, b));
      if (it == parts.end()) continue;
      TopicOptions o = it->second;
      o.buckets = static_cast<uint32_t>(owners->size());
      out.push_back({name, o});
      break;
    }
  }
  return out;
}

Result<std::vector<BucketInfo>> ClusterQueue::Buckets(std::string_view topic) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  std::vector<BucketInfo> out;
  for (uint32_t b = 0; b < owners.size(); ++b) {
    PACKICE_RETURN_IF_ERROR(OnBucket(topic, b, [&](Queue& q, const std::string& part) {
      PACKICE_ASSIGN_OR_RETURN(std::vector<BucketInfo> one, q.Buckets(part));
      if (one.empty()) return Internal("queue: part " + part + " has no bucket");
      one[0].bucket = b;
      out.push_back(one[0]);
      return Status::Ok();
    }));
  }
  return out;
}

Result<uint64_t> ClusterQueue::Append(std::string_view topic, uint32_t bucket,
                                      std::span<const QueueRecord> records) {
  uint64_t first = 0;
  PACKICE_RETURN_IF_ERROR(OnBucket(topic, bucket, [&](Queue& q, const std::string& part) {
    PACKICE_ASSIGN_OR_RETURN(first, q.Append(part, 0, records));
    return Status::Ok();
  }));
  return first;
}

Result<std::vector<BucketRecords>> ClusterQueue::Read(std::string_view topic,
                                                      std::span<const QueuePosition> from,
                                                      size_t limit, std::chrono::milliseconds wait,
                                                      size_t max_bytes) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    std::vector<BucketRecords> out;
    size_t records = 0, bytes = 0;
    for (const QueuePosition& p : from) {
      if (records >= limit || bytes >= max_bytes) break;
      PACKICE_RETURN_IF_ERROR(OnBucket(topic, p.bucket, [&](Queue& q, const std::string& part) {
        const QueuePosition at{0, p.offset};
        PACKICE_ASSIGN_OR_RETURN(std::vector<BucketRecords> got,
                                 q.Read(part, std::span(&at, 1), limit - records,
                                        std::chrono::milliseconds(0), max_bytes - bytes));
        for (BucketRecords& b : got) {
          if (b.records.empty()) continue;
          for (const StoredRecord& r : b.records) bytes += EncodedRecordBytes(r.record);
          records += b.records.size();
          b.bucket = p.bucket;
          out.push_back(std::move(b));
        }
        return Status::Ok();
      }));
    }
    if (!out.empty() || limit == 0 || std::chrono::steady_clock::now() >= deadline) return out;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(20), deadline - std::chrono::steady_clock::now()));
  }
}

Status ClusterQueue::Commit(std::string_view topic, std::string_view group, uint32_t bucket,
                            uint64_t offset) {
  return OnBucket(topic, bucket, [&](Queue& q, const std::string& part) {
    return q.Commit(part, group, 0, offset);
  });
}

Status ClusterQueue::EnforceRetention() { return local_->EnforceRetention(); }

Result<std::optional<uint64_t>> ClusterQueue::Committed(std::string_view topic,
                                                        std::string_view group, uint32_t bucket) {
  std::optional<uint64_t> at;
  PACKICE_RETURN_IF_ERROR(OnBucket(topic, bucket, [&](Queue& q, const std::string& part) {
    PACKICE_ASSIGN_OR_RETURN(at, q.Committed(part, group, 0));
    return Status::Ok();
  }));
  return at;
}

Result<std::vector<GroupPosition>> ClusterQueue::Groups(std::string_view topic) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  std::vector<GroupPosition> out;
  for (uint32_t b = 0; b < owners.size(); ++b) {
    PACKICE_RETURN_IF_ERROR(OnBucket(topic, b, [&](Queue& q, const std::string& part) {
      PACKICE_ASSIGN_OR_RETURN(std::vector<GroupPosition> got, q.Groups(part));
      for (GroupPosition& g : got) {
        g.bucket = b;
        out.push_back(std::move(g));
      }
      return Status::Ok();
    }));
  }
  std::sort(out.begin(), out.end(), [](const GroupPosition& x, const GroupPosition& y) {
    return std::tie(x.group, x.bucket) < std::tie(y.group, y.bucket);
  });
  return out;
}

Result<QueueSubscription> ClusterQueue::Subscribe(std::string_view topic,
                                                  std::function<void()> notify) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  std::string self;
  {
    std::lock_guard<std::mutex> lock(mu_);
    self = self_;
  }
  struct Handle {
    std::vector<QueueSubscription> local;
    std::shared_ptr<Remote> remote;
    std::optional<uint64_t> id;
    ~Handle() {
      if (!id) return;
      std::lock_guard<std::mutex> lock(remote->mu);
      remote->notify.erase(*id);
    }
  };
  auto handle = std::make_shared<Handle>();
  bool elsewhere = false;
  for (uint32_t b = 0; b < owners.size(); ++b) {
    if (owners[b] != self) {
      elsewhere = true;
      continue;
    }
    PACKICE_ASSIGN_OR_RETURN(QueueSubscription s, local_->Subscribe(PartName(topic, b), notify));
    handle->local.push_back(std::move(s));
  }
  if (elsewhere) {
    handle->remote = remote_;
    std::lock_guard<std::mutex> lock(remote_->mu);
    handle->id = remote_->next++;
    remote_->notify.emplace(*handle->id, std::move(notify));
  }
  return QueueSubscription(std::move(handle));
}

void ClusterQueue::PollRemote() {
  std::lock_guard<std::mutex> lock(remote_->mu);
  for (auto& [id, notify] : remote_->notify) notify();
}

Result<uint32_t> ClusterQueue::SetSchema(std::string_view topic, const QueueSchema& schema) {
  PACKICE_ASSIGN_OR_RETURN(std::vector<std::string> owners, Owners(topic, false));
  uint32_t version = 0;
  for (uint32_t b = 0; b < owners.size(); ++b) {
    PACKICE_RETURN_IF_ERROR(OnBucket(topic, b, [&](Queue& q, const std::string& part) {
      PACKICE_ASSIGN_OR_RETURN(uint32_t v, q.SetSchema(part, schema));
      if (b == 0) version = v;
      return Status::Ok();
    }));
  }
  return version;
}

Result<std::vector<QueueSchema>> ClusterQueue::Schemas(std::string_view topic) {
  std::vector<QueueSchema> out;
  PACKICE_RETURN_IF_ERROR(OnBucket(topic, 0, [&](Queue& q, const std::string& part) {
    PACKICE_ASSIGN_OR_RETURN(out, q.Schemas(part));
    return Status::Ok();
  }));
  return out;
}

}  // namespace packice
