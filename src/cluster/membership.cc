#include "cluster/membership.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cluster/backoff.h"
#include "core/metrics.h"

namespace packice::cluster {

namespace {

using nlohmann::json;

// How often the session thread looks at the health of the keepalive and the watch, to report
// connected/disconnected: both live on their own threads and reconnect by themselves.
constexpr std::chrono::milliseconds kStatePoll{100};

bool NodeIdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

}  // namespace

Status ValidateNodeId(std::string_view id) {
  if (id.empty() || id.size() > kMaxNodeIdBytes) {
    return InvalidArgument(
        fmt::format("node id must be 1 to {} bytes, not {}", kMaxNodeIdBytes, id.size()));
  }
  if (id == "." || id == "..") return InvalidArgument("node id must not be '.' or '..'");
  for (char c : id) {
    if (!NodeIdChar(c)) {
      return InvalidArgument(fmt::format("node id {:?}: only A-Z a-z 0-9 . _ : - allowed", id));
    }
  }
  return Status::Ok();
}

std::string NodesPrefix(std::string_view cluster) {
  return fmt::format("/packice/{}/nodes/", cluster);
}

std::string NodeKey(std::string_view cluster, std::string_view node_id) {
  return NodesPrefix(cluster) + std::string(node_id);
}

std::string MemberRecordToJson(const MemberRecord& record) {
  json j = {
      {"node_id", record.node_id},
      {"grpc_address", record.grpc_address},
      {"http_address", record.http_address},
      {"capacity_bytes", record.capacity_bytes},
      {"start_time_ms", record.start_time_ms},
  };
  // Invalid UTF-8 in an address is replaced rather than thrown about: a record always encodes.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<MemberRecord> MemberRecordFromJson(std::string_view text, std::string_view node_id) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("member record is not JSON");
  auto string_field = [&](const char* name, bool required, std::string* out) -> Status {
    auto it = j.find(name);
    if (it == j.end() && !required) return Status::Ok();
    if (it == j.end() || !it->is_string()) {
      return InvalidArgument(fmt::format("member record: '{}' is not a string", name));
    }
    *out = it->get<std::string>();
    return Status::Ok();
  };
  MemberRecord record;
  PACKICE_RETURN_IF_ERROR(string_field("node_id", true, &record.node_id));
  if (record.node_id != node_id) {
    return InvalidArgument(
        fmt::format("member record of {:?} is stored under {:?}", record.node_id, node_id));
  }
  PACKICE_RETURN_IF_ERROR(string_field("grpc_address", true, &record.grpc_address));
  // Other nodes dial it: host:port, printable, bounded.
  const std::string& addr = record.grpc_address;
  const size_t colon = addr.rfind(':');
  bool addr_ok = !addr.empty() && addr.size() <= 256 && colon != std::string::npos && colon > 0;
  for (unsigned char c : addr) addr_ok = addr_ok && c > 0x20 && c < 0x7f && c != '/';
  if (addr_ok) {
    const std::string_view port = std::string_view(addr).substr(colon + 1);
    unsigned value = 0;
    addr_ok = !port.empty() && port.size() <= 5 &&
              std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
    addr_ok = addr_ok && value >= 1 && value <= 65535;
  }
  if (!addr_ok) {
    return InvalidArgument("member record: 'grpc_address' is not host:port");
  }
  PACKICE_RETURN_IF_ERROR(string_field("http_address", false, &record.http_address));
  if (auto it = j.find("capacity_bytes"); it != j.end()) {
    if (!it->is_number_unsigned()) {
      return InvalidArgument("member record: 'capacity_bytes' is not an unsigned integer");
    }
    record.capacity_bytes = it->get<uint64_t>();
  }
  if (auto it = j.find("start_time_ms"); it != j.end()) {
    if (!it->is_number_integer()) {
      return InvalidArgument("member record: 'start_time_ms' is not an integer");
    }
    record.start_time_ms = it->get<int64_t>();
  }
  return record;
}

Result<std::unique_ptr<Membership>> Membership::Start(std::shared_ptr<EtcdClient> client,
                                                      MembershipOptions options,
                                                      MembershipListener listener) {
  if (client == nullptr) return InvalidArgument("membership needs an etcd client");
  PACKICE_RETURN_IF_ERROR(ValidateNodeId(options.self.node_id));
  if (Status s = ValidateNodeId(options.cluster); !s.ok()) {
    return InvalidArgument("cluster name: " + std::string(s.message()));
  }
  if (options.lease_ttl.count() <= 0 || options.retry_initial.count() <= 0 ||
      options.retry_max < options.retry_initial) {
    return InvalidArgument("membership: lease TTL and retry delays must be positive");
  }
  std::unique_ptr<Membership> m(
      new Membership(std::move(client), std::move(options), std::move(listener)));
  // From revision 0: the watch lists the prefix first, so the first view is complete.
  PACKICE_ASSIGN_OR_RETURN(
      m->watch_, m->client_->Watch(m->prefix_, 0, [p = m.get()](const EtcdWatchUpdate& update) {
        p->OnWatch(update);
      }));
  m->session_ = std::thread([p = m.get()] { p->SessionLoop(); });
  return m;
}

Membership::Membership(std::shared_ptr<EtcdClient> client, MembershipOptions options,
                       MembershipListener listener)
    : client_(std::move(client)),
      options_(std::move(options)),
      listener_(std::move(listener)),
      prefix_(NodesPrefix(options_.cluster)),
      key_(NodeKey(options_.cluster, options_.self.node_id)),
      record_json_(MemberRecordToJson(options_.self)) {}

Membership::~Membership() { Stop(); }

void Membership::Stop() { Shutdown(/*revoke=*/true); }
void Membership::Abandon() { Shutdown(/*revoke=*/false); }

void Membership::Shutdown(bool revoke) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (session_.joinable()) session_.join();
  if (watch_ != nullptr) watch_->Stop();
  std::unique_ptr<EtcdKeepAlive> keepalive;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keepalive = std::move(keepalive_);
    connected_ = false;
  }
  if (keepalive == nullptr) {
    spdlog::info("event=membership_stopped cluster={} node={} lease=none", options_.cluster,
                 options_.self.node_id);
    return;
  }
  keepalive->Stop();
  if (!revoke) {
    spdlog::info("event=membership_abandoned cluster={} node={} lease={:x}", options_.cluster,
                 options_.self.node_id, keepalive->lease());
    return;
  }
  const Status s = client_->Revoke(keepalive->lease());
  if (s.ok() || s.code() == StatusCode::kLeaseExpired) {
    spdlog::info("event=membership_left cluster={} node={} lease={:x}", options_.cluster,
                 options_.self.node_id, keepalive->lease());
  } else {
    // The record goes when the lease expires.
    spdlog::warn("event=membership_leave_failed cluster={} node={} lease={:x} error=\"{}\"",
                 options_.cluster, options_.self.node_id, keepalive->lease(), s.ToString());
  }
}

void Membership::SessionLoop() {
  Backoff backoff(options_.retry_initial, options_.retry_max);
  int64_t old_lease = 0;  // a lost lease, revoked once a new one holds the record
  uint64_t failures = 0;  // failed joins in a row
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (keepalive_ == nullptr) {
      lock.unlock();
      Status s = Join();
      if (s.ok() && old_lease != 0) {
        // Usually long expired; if etcd still has it, it holds nothing now (the put moved the
        // record to the new lease), and revoking it spares etcd the wait.
        client_->Revoke(old_lease).IgnoreError();
        old_lease = 0;
      }
      lock.lock();
      if (!s.ok()) {
        last_error_ = s.ToString();
        const auto delay = backoff.Next();
        // The first failure of a run at warn, then one line in a hundred: an etcd that is down
        // for an hour does not fill the log.
        spdlog::log(failures++ % 100 == 0 ? spdlog::level::warn : spdlog::level::debug,
                    "event=membership_join_failed cluster={} node={} attempt={} retry_ms={} "
                    "error=\"{}\"",
                    options_.cluster, options_.self.node_id, failures, delay.count(), last_error_);
        UpdateConnected();
        cv_.wait_for(lock, delay, [this] { return stop_; });
        continue;
      }
      backoff.Reset();
      failures = 0;
    }
    if (lease_lost_) {
      lease_lost_ = false;
      std::unique_ptr<EtcdKeepAlive> lost = std::move(keepalive_);
      last_error_ = lost->status().ToString();
      old_lease = lost->lease();
      UpdateConnected();
      lock.unlock();
      lost.reset();  // joins its thread, which has finished with on_lost
      lock.lock();
      continue;
    }
    UpdateConnected();
    cv_.wait_for(lock, kStatePoll, [this] { return stop_ || lease_lost_; });
  }
}

Status Membership::Join() {
  PACKICE_ASSIGN_OR_RETURN(EtcdLease lease, client_->Grant(options_.lease_ttl));
  if (Status s = client_->Put(key_, record_json_, lease.id).status(); !s.ok()) {
    client_->Revoke(lease.id).IgnoreError();
    return s;
  }
  PACKICE_ASSIGN_OR_RETURN(auto keepalive, client_->KeepAlive(lease, [this](const Status&) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      lease_lost_ = true;
    }
    cv_.notify_all();
  }));
  spdlog::info("event=membership_registered cluster={} node={} key={} lease={:x} ttl_s={}",
               options_.cluster, options_.self.node_id, key_, lease.id, lease.ttl.count());
  std::lock_guard<std::mutex> lock(mu_);
  keepalive_ = std::move(keepalive);
  return Status::Ok();
}

void Membership::UpdateConnected() {
  const bool lease_ok = keepalive_ != nullptr && keepalive_->healthy();
  const bool watch_ok = watch_->synced();
  const bool connected = lease_ok && watch_ok;
  if (connected == connected_) return;
  connected_ = connected;
  if (connected) {
    if (ever_connected_) ++reconnects_;
    ever_connected_ = true;
    spdlog::info("event=membership_connected cluster={} node={} lease={:x} members={} epoch={}",
                 options_.cluster, options_.self.node_id, keepalive_->lease(), view_.members.size(),
                 view_.epoch);
    return;
  }
  if (!watch_ok && !watch_->last_error().ok()) last_error_ = watch_->last_error().ToString();
  spdlog::warn(
      "event=membership_disconnected cluster={} node={} lease_ok={} watch_ok={} members={} "
      "epoch={} error=\"{}\"",
      options_.cluster, options_.self.node_id, lease_ok, watch_ok, view_.members.size(),
      view_.epoch, last_error_);
}

void Membership::OnWatch(const EtcdWatchUpdate& update) {
  // Parses one key of the prefix into members_, or drops it: a record that does not parse is
  // not a member (and replaces whatever that key held before).
  auto apply_put = [this](const EtcdKeyValue& kv) {
    const std::string_view id = std::string_view(kv.key).substr(prefix_.size());
    Result<MemberRecord> record = ValidateNodeId(id).ok()
                                      ? MemberRecordFromJson(kv.value, id)
                                      : Result<MemberRecord>(InvalidArgument("bad node id"));
    if (!record.ok()) {
      spdlog::warn("event=membership_record_skipped cluster={} key={:?} error=\"{}\"",
                   options_.cluster, kv.key, record.status().ToString());
      members_.erase(std::string(id));
      return;
    }
    members_[std::string(id)] = std::move(record).value();
  };

  MembershipView changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (update.kind == EtcdWatchUpdate::Kind::kReset) {
      members_.clear();
      for (const auto& kv : update.kvs) apply_put(kv);
    } else {
      for (const auto& e : update.events) {
        if (e.type == EtcdEvent::Type::kPut) {
          apply_put(e.kv);
        } else {
          members_.erase(e.kv.key.substr(prefix_.size()));
        }
      }
    }
    std::vector<MemberRecord> members;
    members.reserve(members_.size());
    for (const auto& [id, record] : members_) members.push_back(record);
    view_.revision = update.revision;
    // The first listing is a view even when empty; later ones only when the set changed.
    if (view_.epoch != 0 && members == view_.members) return;
    ++view_.epoch;
    view_.members = std::move(members);
    changed = view_;
  }
  spdlog::info("event=membership_changed cluster={} node={} epoch={} members={} revision={}",
               options_.cluster, options_.self.node_id, changed.epoch, changed.members.size(),
               changed.revision);
  if (listener_) listener_(changed);
}

MembershipView Membership::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

MembershipState Membership::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  MembershipState s;
  s.connected = connected_;
  s.reconnects = reconnects_;
  s.last_error = last_error_;
  s.lease = keepalive_ != nullptr ? keepalive_->lease() : 0;
  s.epoch = view_.epoch;
  s.members = view_.members.size();
  return s;
}

void Membership::WriteMetrics(MetricsWriter& writer) const {
  const MembershipState s = state();
  const MetricLabel label{"cluster", options_.cluster};
  const std::span<const MetricLabel> labels(&label, 1);
  writer.Family("packice_cluster_connected",
                "1 while the node's etcd lease is renewed and its watch is established.",
                MetricType::kGauge);
  writer.Sample("packice_cluster_connected", labels, s.connected ? 1 : 0);
  writer.Family("packice_cluster_members", "Members in the node's current view.",
                MetricType::kGauge);
  writer.Sample("packice_cluster_members", labels, s.members);
  writer.Family("packice_cluster_epoch", "Local number of the current membership view.",
                MetricType::kGauge);
  writer.Sample("packice_cluster_epoch", labels, s.epoch);
  writer.Family("packice_cluster_reconnects_total", "Times the node rejoined etcd after losing it.",
                MetricType::kCounter);
  writer.Sample("packice_cluster_reconnects_total", labels, s.reconnects);
}

}  // namespace packice::cluster
