#include "packice/client.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/make_client.h"

namespace packice {
namespace internal {

// What a client shares with its handles: the channel and the renewal of live leases.
class ClientCore {
 public:
  ClientCore(std::shared_ptr<Channel> channel, ClientOptions options)
      : channel_(std::move(channel)), options_(options) {}

  ~ClientCore() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (renewer_.joinable()) renewer_.join();
  }

  Channel& channel() { return *channel_; }

  void Track(LeaseId lease, Duration ttl) {
    if (lease == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    const bool was_empty = live_.empty();
    live_[lease] = ttl;
    if (!renewer_.joinable()) {
      renewer_ = std::thread([this] { RenewLoop(); });
      return;
    }
    // Wake the renewer only if it must shorten its sleep: a wake-up per handle costs a context
    // switch on every Get of a large object.
    if (was_empty || RenewInterval(ttl) < sleeping_for_) {
      reschedule_ = true;
      cv_.notify_all();
    }
  }

  void Untrack(LeaseId lease) {
    if (lease == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(lease);
  }

 private:
  void RenewLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (live_.empty()) {
        cv_.wait(lock, [this] { return stop_ || !live_.empty(); });
        continue;
      }
      Duration shortest = Duration::max();
      for (const auto& [id, ttl] : live_) shortest = std::min(shortest, ttl);
      sleeping_for_ = RenewInterval(shortest);
      const auto wake_at = std::chrono::steady_clock::now() + sleeping_for_;
      cv_.wait_until(lock, wake_at, [this] { return stop_ || reschedule_; });
      if (stop_) return;
      if (reschedule_) {  // a shorter lease arrived: recompute the sleep
        reschedule_ = false;
        continue;
      }
      std::vector<LeaseId> ids;
      for (const auto& [id, ttl] : live_) ids.push_back(id);
      lock.unlock();
      std::vector<LeaseId> expired;
      // A failed renewal (node gone) shows up on the handle's next call.
      channel_->Renew(ids, &expired).IgnoreError();
      lock.lock();
      for (LeaseId id : expired) live_.erase(id);
    }
  }

  Duration RenewInterval(Duration ttl) const {
    return std::max(std::chrono::duration_cast<Duration>(ttl * options_.renew_fraction),
                    Duration(10));
  }

  std::shared_ptr<Channel> channel_;
  const ClientOptions options_;
  Duration sleeping_for_ = Duration::max();  // the renewer's current sleep; guarded by mu_
  bool reschedule_ = false;                  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<LeaseId, Duration> live_;
  bool stop_ = false;
  std::thread renewer_;
};

struct HandleState {
  std::shared_ptr<ClientCore> core;
  OpenedObject obj;
  bool done = false;  // sealed, aborted or released

  ~HandleState() { core->Untrack(obj.lease); }
};

std::unique_ptr<HandleState> MakeHandle(std::shared_ptr<ClientCore> core, OpenedObject obj) {
  core->Track(obj.lease, obj.lease_ttl);
  auto state = std::make_unique<HandleState>();
  state->core = std::move(core);
  state->obj = std::move(obj);
  return state;
}

}  // namespace internal

using internal::HandleState;

// --- ObjectWriter ----------------------------------------------------------------------------

ObjectWriter::ObjectWriter(std::unique_ptr<HandleState> state) : state_(std::move(state)) {}
ObjectWriter::ObjectWriter(ObjectWriter&&) noexcept = default;
ObjectWriter& ObjectWriter::operator=(ObjectWriter&& o) noexcept {
  if (this != &o) {
    Abort().IgnoreError();
    state_ = std::move(o.state_);
  }
  return *this;
}
ObjectWriter::~ObjectWriter() { Abort().IgnoreError(); }

std::span<std::byte> ObjectWriter::data() {
  if (!state_ || state_->done) return {};
  return state_->obj.view->bytes();
}
const std::string& ObjectWriter::key() const { return state_->obj.info.key; }
const ObjectInfo& ObjectWriter::info() const { return state_->obj.info; }

Result<ObjectInfo> ObjectWriter::Seal() { return Seal(state_ ? state_->obj.info.size : 0); }

Result<ObjectInfo> ObjectWriter::Seal(uint64_t size) {
  if (!state_ || state_->done) return WrongState("object was already sealed or aborted");
  auto info = state_->core->channel().Seal(state_->obj.lease, *state_->obj.view, size);
  if (SealEndedLease(info.status())) {
    state_->done = true;  // the lease is over either way
    state_->obj.view.reset();
    state_->core->Untrack(state_->obj.lease);
  }
  if (info.ok()) state_->obj.info = *info;
  return info;
}

Status ObjectWriter::Abort() {
  if (!state_ || state_->done) return Status::Ok();
  state_->done = true;
  state_->obj.view.reset();
  state_->core->Untrack(state_->obj.lease);
  Status s = state_->core->channel().Discard(state_->obj.lease);
  return s.code() == StatusCode::kLeaseExpired ? Status::Ok() : s;
}

// --- ObjectReader ----------------------------------------------------------------------------

ObjectReader::ObjectReader(std::unique_ptr<HandleState> state) : state_(std::move(state)) {}
ObjectReader::ObjectReader(ObjectReader&&) noexcept = default;
ObjectReader& ObjectReader::operator=(ObjectReader&& o) noexcept {
  if (this != &o) {
    Release().IgnoreError();
    state_ = std::move(o.state_);
  }
  return *this;
}
ObjectReader::~ObjectReader() { Release().IgnoreError(); }

std::span<const std::byte> ObjectReader::data() const {
  if (!state_ || state_->done) return {};
  return state_->obj.view->bytes();
}
const std::string& ObjectReader::key() const { return state_->obj.info.key; }
const ObjectInfo& ObjectReader::info() const { return state_->obj.info; }

Status ObjectReader::Release() {
  if (!state_ || state_->done) return Status::Ok();
  state_->done = true;
  state_->obj.view.reset();  // unmap before the node may recycle the memory
  if (state_->obj.lease == 0) return Status::Ok();
  state_->core->Untrack(state_->obj.lease);
  Status s = state_->core->channel().Release(state_->obj.lease);
  return s.code() == StatusCode::kLeaseExpired ? Status::Ok() : s;
}

// --- Client ----------------------------------------------------------------------------------

Client::Client(std::shared_ptr<internal::ClientCore> core) : core_(std::move(core)) {}

Result<ObjectWriter> Client::Create(std::string_view key, uint64_t size, CreateOptions options) {
  PACKICE_ASSIGN_OR_RETURN(OpenedObject obj, core_->channel().Create(key, size, options));
  return ObjectWriter(internal::MakeHandle(core_, std::move(obj)));
}

Result<ObjectReader> Client::Get(std::string_view key) {
  PACKICE_ASSIGN_OR_RETURN(OpenedObject obj, core_->channel().Get(key));
  return ObjectReader(internal::MakeHandle(core_, std::move(obj)));
}

Result<ObjectInfo> Client::Put(std::string_view key, std::span<const std::byte> data,
                               CreateOptions options) {
  return core_->channel().Put(key, data, options);
}

Result<ObjectInfo> Client::Put(std::string_view key, std::string_view data, CreateOptions options) {
  return Put(key, std::as_bytes(std::span<const char>(data.data(), data.size())),
             std::move(options));
}

Result<ObjectInfo> Client::Stat(std::string_view key) { return core_->channel().Stat(key); }
Result<ListPage> Client::List(const ListOptions& options) { return core_->channel().List(options); }
Status Client::Delete(std::string_view key) { return core_->channel().Delete(key); }

Client MakeClient(std::shared_ptr<Channel> channel, ClientOptions options) {
  return Client(std::make_shared<internal::ClientCore>(std::move(channel), options));
}

Client Connect(std::shared_ptr<Peer> peer, ClientOptions options) {
  return MakeClient(NewDirectChannel(std::move(peer)), options);
}

}  // namespace packice
