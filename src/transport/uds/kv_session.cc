#include "transport/uds/kv_session.h"

#include <algorithm>
#include <boost/asio/post.hpp>

#include "transport/uds/frame.h"
#include "transport/uds/kv_wire_convert.h"
#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

namespace asio = boost::asio;

// A frame holds up to this many events, and stops taking more past kFrameBytes of them (one
// event may be larger: a 1 MiB value with its 1 MiB previous value).
constexpr size_t kEventsPerFrame = 256;
constexpr size_t kFrameBytes = 1u << 20;
// Quick puts held back for one PutMany: at most this many, and this many bytes of requests.
constexpr size_t kMaxHeldPuts = 256;
constexpr size_t kMaxHeldBytes = 4u << 20;

// Calls that never wait on a log: with nothing queued before them they run on the strand.
bool IsRead(const wire::KvRequest& req) {
  switch (req.op_case()) {
    case wire::KvRequest::kGet:
    case wire::KvRequest::kMultiGet:
    case wire::KvRequest::kScan:
    case wire::KvRequest::kListNamespaces:
      return true;
    default:
      return false;
  }
}

// Writes that run at once when their namespace's writes do not wait (KvStore::WritesWait).
bool IsQuickWrite(const wire::KvRequest& req) {
  switch (req.op_case()) {
    case wire::KvRequest::kPut:
    case wire::KvRequest::kDelete:
    case wire::KvRequest::kMultiPut:
    case wire::KvRequest::kBatch:
      return true;
    default:
      return false;
  }
}

// `body` (may be null) is moved into the frame's message, not copied.
std::string Frame(uint64_t id, const Status& s, wire::KvResponse* body) {
  wire::Response resp;
  resp.set_id(id);
  ToWire(s, &resp);
  if (body != nullptr) *resp.mutable_kv() = std::move(*body);
  std::string frame;
  AppendFrame(resp, &frame);
  return frame;
}

std::string WatchFrame(uint64_t id, wire::KvWatchEvents events) {
  wire::KvResponse body;
  *body.mutable_watch() = std::move(events);
  return Frame(id, Status::Ok(), &body);
}

}  // namespace

KvSession::KvSession(std::shared_ptr<KvStore> kv, asio::thread_pool* pool, KvSessionHost host)
    : kv_(std::move(kv)), pool_(pool), host_(std::move(host)) {}

KvSession::~KvSession() = default;

void KvSession::Respond(uint64_t id, const Status& s, wire::KvResponse* body) {
  if (!closed_) host_.queue(Frame(id, s, body));
}

bool KvSession::backlogged() const {
  return queue_.size() >= kMaxQueuedCalls || queued_bytes_ >= kMaxQueuedBytes;
}

void KvSession::Handle(uint64_t id, wire::KvRequest req, size_t bytes) {
  if (kv_ != nullptr && !running_ && queue_.empty() && req.op_case() == wire::KvRequest::kPut &&
      (held_puts_.empty() || held_puts_.front().req.ns() == req.ns()) &&
      !kv_->WritesWait(req.ns())) {
    held_bytes_ += bytes;
    held_puts_.push_back(Call{id, std::move(req), bytes});
    if (held_puts_.size() >= kMaxHeldPuts || held_bytes_ >= kMaxHeldBytes) RunHeldPuts();
    return;
  }
  RunHeldPuts();  // calls run in order: what was held first
  if (kv_ == nullptr) return Respond(id, Unimplemented("this node serves no KV"), nullptr);
  if (req.op_case() == wire::KvRequest::kCancelWatch) return CancelWatch(id, req.watch_id());
  if (req.op_case() == wire::KvRequest::kWatch && watches_.size() >= kMaxWatches) {
    return Respond(
        id, OutOfCapacity("a connection has at most " + std::to_string(kMaxWatches) + " watches"),
        nullptr);
  }
  if (!running_ && queue_.empty() &&
      (IsRead(req) || (IsQuickWrite(req) && !kv_->WritesWait(req.ns())))) {
    wire::KvResponse resp;
    Status s = HandleKvRequest(*kv_, req, &resp);
    return Respond(id, s, s.ok() ? &resp : nullptr);
  }
  queued_bytes_ += bytes;
  queue_.push_back(Call{id, std::move(req), bytes});
  if (backlogged()) was_backlogged_ = true;
  if (!running_) RunQueued();
}

void KvSession::EndOfInput() { RunHeldPuts(); }

void KvSession::RunHeldPuts() {
  if (held_puts_.empty()) return;
  std::vector<Call> puts;
  puts.swap(held_puts_);
  held_bytes_ = 0;
  if (puts.size() == 1) {
    wire::KvResponse resp;
    Status s = HandleKvRequest(*kv_, puts[0].req, &resp);
    return Respond(puts[0].id, s, s.ok() ? &resp : nullptr);
  }
  std::vector<const wire::KvRequest*> reqs;
  reqs.reserve(puts.size());
  for (const Call& c : puts) reqs.push_back(&c.req);
  std::vector<Status> status;
  std::vector<wire::KvResponse> resp;
  HandleKvPuts(*kv_, reqs, &status, &resp);
  for (size_t i = 0; i < puts.size(); ++i) {
    Respond(puts[i].id, status[i], status[i].ok() ? &resp[i] : nullptr);
  }
}

KvSession::Done KvSession::Run(KvStore& kv, Call& call) {
  Done done{call.id, {}, nullptr};
  if (call.req.op_case() == wire::KvRequest::kWatch) {
    auto watcher = kv.Watch(call.req.ns(), FromWire(call.req.watch()));
    if (!watcher.ok()) {
      done.frame = Frame(call.id, watcher.status(), nullptr);
    } else {
      done.watcher = *std::move(watcher);
    }
    return done;
  }
  wire::KvResponse resp;
  Status s = HandleKvRequest(kv, call.req, &resp);
  done.frame = Frame(call.id, s, s.ok() ? &resp : nullptr);
  return done;
}

void KvSession::RunQueued() {
  running_ = true;
  // One connection's calls run in order: the whole queue goes as one batch.
  std::vector<Call> batch(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  asio::post(*pool_, [self = shared_from_this(), batch = std::move(batch)]() mutable {
    std::vector<Done> done;
    done.reserve(batch.size());
    for (size_t i = 0; i < batch.size();) {
      // Consecutive puts to one namespace (a pipeline's) are made durable together.
      size_t end = i;
      while (end < batch.size() && batch[end].req.op_case() == wire::KvRequest::kPut &&
             batch[end].req.ns() == batch[i].req.ns()) {
        ++end;
      }
      if (end - i < 2) {
        done.push_back(Run(*self->kv_, batch[i++]));
        continue;
      }
      std::vector<const wire::KvRequest*> puts;
      for (size_t j = i; j < end; ++j) puts.push_back(&batch[j].req);
      std::vector<Status> status;
      std::vector<wire::KvResponse> resp;
      HandleKvPuts(*self->kv_, puts, &status, &resp);
      for (size_t j = i; j < end; ++j) {
        const size_t k = j - i;
        done.push_back(Done{batch[j].id,
                            Frame(batch[j].id, status[k], status[k].ok() ? &resp[k] : nullptr),
                            nullptr});
      }
      i = end;
    }
    asio::post(self->host_.strand,
               [self, done = std::move(done)]() mutable { self->Finished(std::move(done)); });
  });
}

void KvSession::Finished(std::vector<Done> done) {
  running_ = false;
  std::string frames;
  for (Done& d : done) {
    if (d.watcher != nullptr) {
      if (!frames.empty() && !closed_) host_.send(std::move(frames));
      frames.clear();
      StartWatch(d.id, std::move(d.watcher));
    } else {
      frames += d.frame;
    }
  }
  if (!frames.empty() && !closed_) host_.send(std::move(frames));
  if (closed_) {
    queue_.clear();
    return;
  }
  if (!queue_.empty()) RunQueued();
  if (was_backlogged_ && !backlogged()) {
    was_backlogged_ = false;
    host_.unblocked();
  }
}

void KvSession::StartWatch(uint64_t id, std::unique_ptr<KvWatcher> watcher) {
  if (closed_) return;  // the watcher's destructor cancels it
  if (watches_.size() >= kMaxWatches || watches_.contains(id)) {
    host_.send(Frame(
        id,
        watches_.contains(id)
            ? InvalidArgument("a watch with id " + std::to_string(id) + " is open")
            : OutOfCapacity("a connection has at most " + std::to_string(kMaxWatches) + " watches"),
        nullptr));
    return;
  }
  wire::KvWatchEvents started;  // with the first revision the watch will deliver
  started.set_resume_revision(watcher->resume_revision());
  host_.send(WatchFrame(id, std::move(started)));
  KvWatcher* w = watcher.get();
  watches_.emplace(id, std::move(watcher));
  w->SetNotify([weak = weak_from_this(), strand = host_.strand, id] {
    asio::post(strand, [weak, id] {
      if (auto self = weak.lock()) self->Pump(id);
    });
  });
  Pump(id);  // what arrived before the notify was set
}

void KvSession::CancelWatch(uint64_t id, uint64_t watch_id) {
  auto it = watches_.find(watch_id);
  if (it == watches_.end()) {
    return Respond(id, NotFound("no watch with id " + std::to_string(watch_id)), nullptr);
  }
  // Its end frame follows its buffered events (sent by the notify Cancel runs).
  it->second->Cancel();
  Respond(id, Status::Ok(), nullptr);
}

void KvSession::Pump(uint64_t id) {
  // Sending may flush, fail and close the connection (Close clears watches_): the watcher is
  // looked up again after every send.
  while (!closed_) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    if (host_.pending_output() >= host_.max_pending_output) {
      if (std::find(paused_.begin(), paused_.end(), id) == paused_.end()) paused_.push_back(id);
      return;
    }
    KvWatcher& w = *it->second;
    auto events = w.Next(std::chrono::steady_clock::time_point::min(), kEventsPerFrame);
    if (events.ok()) {
      std::string frames;
      wire::KvWatchEvents msg;
      size_t bytes = 0;
      for (const KvEvent& e : *events) {
        ToWire(e, msg.add_events());
        bytes += 32 + e.kv.key.size() + e.kv.value.size() +
                 (e.prev ? e.prev->key.size() + e.prev->value.size() : 0);
        if (bytes >= kFrameBytes) {
          frames += WatchFrame(id, std::move(msg));
          msg.Clear();
          bytes = 0;
        }
      }
      if (msg.events_size() > 0) frames += WatchFrame(id, std::move(msg));
      host_.send(std::move(frames));
      continue;
    }
    if (events.status().code() == StatusCode::kTimeout) return;
    wire::KvWatchEvents end;
    end.set_end_code(static_cast<int32_t>(events.status().code()));
    end.set_end_message(std::string(events.status().message()));
    end.set_resume_revision(w.resume_revision());
    watches_.erase(it);
    host_.send(WatchFrame(id, std::move(end)));
    return;
  }
}

void KvSession::OutputDrained() {
  if (paused_.empty()) return;
  // Posted: the connection's Flush calls this, and Pump sends (and so flushes) in turn.
  asio::post(host_.strand, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (self == nullptr) return;
    std::vector<uint64_t> paused;
    paused.swap(self->paused_);
    for (uint64_t id : paused) self->Pump(id);
  });
}

void KvSession::Close() {
  closed_ = true;
  queue_.clear();
  queued_bytes_ = 0;
  paused_.clear();
  for (auto& [id, w] : watches_) w->SetNotify(nullptr);
  watches_.clear();  // their destructors cancel them
}

}  // namespace packice
