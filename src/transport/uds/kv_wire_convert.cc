#include "transport/uds/kv_wire_convert.h"

#include <string>
#include <utility>

namespace packice {
namespace {

std::optional<Duration> OptionalMs(bool has, int64_t ms) {
  if (!has) return std::nullopt;
  return Duration(ms);
}

Status CheckMs(bool has, int64_t ms, const char* what) {
  if (has && ms < 0) return InvalidArgument(std::string("negative ") + what);
  return Status::Ok();
}

void ToWire(const PutResult& r, wire::KvPutResult* out) {
  out->set_revision(r.revision);
  if (r.prev) {
    ToWire(*r.prev, out->mutable_prev());
  }
}

PutResult PutFromWire(const wire::KvPutResult& in) {
  PutResult r;
  r.revision = in.revision();
  if (in.has_prev()) r.prev = FromWire(in.prev());
  return r;
}

Result<PutOptions> PutOptionsFromWire(const wire::KvPut& in) {
  PACKICE_RETURN_IF_ERROR(CheckMs(in.has_ttl_ms(), in.ttl_ms(), "TTL"));
  PutOptions o;
  o.ttl = OptionalMs(in.has_ttl_ms(), in.ttl_ms());
  if (in.has_if_mod_revision()) o.if_mod_revision = in.if_mod_revision();
  o.prev_kv = in.prev_kv();
  return o;
}

void PutToWire(std::string_view key, std::string_view value, const PutOptions& o,
               wire::KvPut* out) {
  out->set_key(std::string(key));
  out->set_value(std::string(value));
  if (o.ttl) out->set_ttl_ms(o.ttl->count());
  if (o.if_mod_revision) out->set_if_mod_revision(*o.if_mod_revision);
  out->set_prev_kv(o.prev_kv);
}

// The response's expected result, or kProtocolError when the other side sent another one.
Result<wire::KvResponse> Expect(Result<wire::KvResponse> resp, wire::KvResponse::ResultCase want) {
  if (!resp.ok()) return resp.status();
  if (resp->result_case() != want) {
    return ProtocolError("kv: the reply carries result " + std::to_string(resp->result_case()) +
                         ", expected " + std::to_string(want));
  }
  return resp;
}

// One multi item's status, as ToWire(Status, Response) puts a response's.
void ItemStatusToWire(const Status& status, wire::KvItemResult* item) {
  item->set_code(static_cast<int32_t>(status.code()));
  if (!status.ok()) item->set_message(std::string(status.message()));
}

Status ItemStatusFromWire(const wire::KvItemResult& item) {
  if (item.code() == 0) return Status::Ok();
  auto code = StatusCodeFromInt(item.code());
  if (!code) {
    return ProtocolError("unknown status code " + std::to_string(item.code()) + ": " +
                         item.message());
  }
  return Status(*code, item.message());
}

// Puts from the wire run as one KvStore::PutMany, a result per put in `results`, in order: a put
// whose options are bad answers on its own. When PutMany fails (no such namespace) the puts it
// would have run answer its error, which is also returned (the call's error).
Status RunPuts(KvStore& kv, std::string_view ns, std::span<const wire::KvPut* const> puts,
               std::vector<Result<PutResult>>* results) {
  results->clear();
  std::vector<KvPutItem> items;
  std::vector<size_t> index;
  for (const wire::KvPut* p : puts) {
    Result<PutOptions> o = PutOptionsFromWire(*p);
    results->emplace_back(o.ok() ? Internal("kv: put not run") : o.status());
    if (!o.ok()) continue;
    index.push_back(results->size() - 1);
    items.push_back(KvPutItem{p->key(), p->value(), *o});
  }
  if (items.empty()) return Status::Ok();
  Result<std::vector<Result<PutResult>>> done = kv.PutMany(ns, items);
  for (size_t j = 0; j < index.size(); ++j) {
    Result<PutResult>& r = (*results)[index[j]];
    if (!done.ok()) {
      r = done.status();
    } else if (j >= done->size()) {
      r = Internal("kv: PutMany answered " + std::to_string(done->size()) + " of " +
                   std::to_string(items.size()) + " puts");
    } else {
      r = std::move((*done)[j]);
    }
  }
  return done.status();
}

Status CheckMultiItems(int n) {
  if (n > static_cast<int>(kMaxMultiItems)) {
    return InvalidArgument("kv: " + std::to_string(n) + " items in one multi call, at most " +
                           std::to_string(kMaxMultiItems));
  }
  return Status::Ok();
}

wire::KvRequest OnNamespace(std::string_view ns) {
  wire::KvRequest req;
  req.set_ns(std::string(ns));
  return req;
}

}  // namespace

void ToWire(KeyValue&& kv, wire::KvKeyValue* out) {
  out->set_key(std::move(kv.key));
  out->set_value(std::move(kv.value));
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  out->set_expires_unix_ms(kv.expires_unix_ms);
}

KeyValue FromWire(wire::KvKeyValue&& in) {
  return KeyValue{std::move(*in.mutable_key()),
                  std::move(*in.mutable_value()),
                  in.create_revision(),
                  in.mod_revision(),
                  in.version(),
                  in.expires_unix_ms()};
}

void ToWire(const KeyValue& kv, wire::KvKeyValue* out) { ToWire(KeyValue(kv), out); }

KeyValue FromWire(const wire::KvKeyValue& in) { return FromWire(wire::KvKeyValue(in)); }

void ToWire(const NamespaceOptions& o, wire::KvNamespaceOptions* out) {
  out->set_engine(static_cast<uint32_t>(o.engine));
  out->set_write_mode(static_cast<uint32_t>(o.write_mode));
  out->set_fsync(static_cast<uint32_t>(o.fsync));
  out->set_fsync_interval_ms(o.fsync_interval.count());
  out->set_default_ttl_ms(o.default_ttl.count());
}

Result<NamespaceOptions> FromWire(const wire::KvNamespaceOptions& in) {
  NamespaceOptions o;
  if (in.engine() > 2) return InvalidArgument("kv: unknown engine " + std::to_string(in.engine()));
  if (in.write_mode() > 2) {
    return InvalidArgument("kv: unknown write mode " + std::to_string(in.write_mode()));
  }
  if (in.fsync() > 3) return InvalidArgument("kv: unknown fsync " + std::to_string(in.fsync()));
  if (in.engine() != 0) o.engine = static_cast<KvEngine>(in.engine());
  if (in.write_mode() != 0) o.write_mode = static_cast<KvWriteMode>(in.write_mode());
  if (in.fsync() != 0) o.fsync = static_cast<KvFsync>(in.fsync());
  PACKICE_RETURN_IF_ERROR(CheckMs(true, in.fsync_interval_ms(), "fsync interval"));
  PACKICE_RETURN_IF_ERROR(CheckMs(true, in.default_ttl_ms(), "default TTL"));
  if (in.fsync_interval_ms() != 0) o.fsync_interval = Duration(in.fsync_interval_ms());
  o.default_ttl = Duration(in.default_ttl_ms());
  return o;
}

void ToWire(const KvEvent& e, wire::KvEventMsg* out) {
  out->set_type(static_cast<uint32_t>(e.type));
  ToWire(e.kv, out->mutable_kv());
  if (e.prev) {
    ToWire(*e.prev, out->mutable_prev());
  }
  out->set_expired(e.expired);
}

Result<KvEvent> FromWire(const wire::KvEventMsg& in) {
  if (in.type() != 1 && in.type() != 2) {
    return ProtocolError("kv: unknown event type " + std::to_string(in.type()));
  }
  KvEvent e;
  e.type = static_cast<KvEvent::Type>(in.type());
  e.kv = FromWire(in.kv());
  if (in.has_prev()) e.prev = FromWire(in.prev());
  e.expired = in.expired();
  return e;
}

WatchOptions FromWire(const wire::KvWatch& in) {
  WatchOptions o;
  o.key = in.key();
  o.prefix = in.prefix();
  o.start_revision = in.start_revision();
  o.prev_kv = in.prev_kv();
  o.buffer_events = in.buffer_events();
  return o;
}

Status HandleKvRequest(KvStore& kv, const wire::KvRequest& req, wire::KvResponse* resp) {
  const std::string& ns = req.ns();
  switch (req.op_case()) {
    case wire::KvRequest::kCreateNamespace: {
      PACKICE_ASSIGN_OR_RETURN(NamespaceOptions o, FromWire(req.create_namespace().options()));
      return kv.CreateNamespace(req.create_namespace().path(), o);
    }
    case wire::KvRequest::kDeleteNamespace:
      return kv.DeleteNamespace(req.delete_namespace());
    case wire::KvRequest::kListNamespaces: {
      PACKICE_ASSIGN_OR_RETURN(std::vector<NamespaceInfo> list,
                               kv.ListNamespaces(req.list_namespaces().prefix()));
      auto* out = resp->mutable_namespaces();
      for (const NamespaceInfo& n : list) {
        wire::KvNamespaceInfo* i = out->add_namespaces();
        i->set_path(n.path);
        ToWire(n.options, i->mutable_options());
        i->set_revision(n.revision);
        i->set_keys(n.keys);
      }
      return Status::Ok();
    }
    case wire::KvRequest::kGet: {
      PACKICE_ASSIGN_OR_RETURN(KeyValue got, kv.Get(ns, req.get().key()));
      ToWire(std::move(got), resp->mutable_kv());
      return Status::Ok();
    }
    case wire::KvRequest::kPut: {
      PACKICE_ASSIGN_OR_RETURN(PutOptions o, PutOptionsFromWire(req.put()));
      PACKICE_ASSIGN_OR_RETURN(PutResult r, kv.Put(ns, req.put().key(), req.put().value(), o));
      ToWire(r, resp->mutable_put());
      return Status::Ok();
    }
    case wire::KvRequest::kDelete: {
      DeleteOptions o;
      if (req.delete_().has_if_mod_revision()) o.if_mod_revision = req.delete_().if_mod_revision();
      o.prev_kv = req.delete_().prev_kv();
      PACKICE_ASSIGN_OR_RETURN(DeleteResult r, kv.Delete(ns, req.delete_().key(), o));
      ToWire(PutResult{r.revision, std::move(r.prev)}, resp->mutable_delete_());
      return Status::Ok();
    }
    case wire::KvRequest::kScan: {
      const wire::KvScan& s = req.scan();
      ScanOptions o{s.prefix(),   s.start(), s.end(), s.after(), s.limit() ? s.limit() : 1000,
                    s.keys_only()};
      PACKICE_ASSIGN_OR_RETURN(ScanResult r, kv.Scan(ns, o));
      auto* out = resp->mutable_scan();
      for (KeyValue& k : r.kvs) ToWire(std::move(k), out->add_kvs());
      out->set_next(r.next);
      out->set_revision(r.revision);
      return Status::Ok();
    }
    case wire::KvRequest::kBatch: {
      std::vector<BatchOp> ops;
      ops.reserve(req.batch().ops_size());
      for (const wire::KvBatchOp& w : req.batch().ops()) {
        PACKICE_RETURN_IF_ERROR(CheckMs(w.has_ttl_ms(), w.ttl_ms(), "TTL"));
        BatchOp op;
        op.kind = w.delete_() ? BatchOp::Kind::kDelete : BatchOp::Kind::kPut;
        op.key = w.key();
        op.value = w.value();
        op.ttl = OptionalMs(w.has_ttl_ms(), w.ttl_ms());
        if (w.has_if_mod_revision()) op.if_mod_revision = w.if_mod_revision();
        op.ignore_missing = w.ignore_missing();
        ops.push_back(std::move(op));
      }
      PACKICE_ASSIGN_OR_RETURN(BatchResult r, kv.Commit(ns, ops));
      resp->set_batch_revision(r.revision);
      return Status::Ok();
    }
    case wire::KvRequest::kMultiGet: {
      PACKICE_RETURN_IF_ERROR(CheckMultiItems(req.multi_get().keys_size()));
      auto* out = resp->mutable_multi();
      size_t bytes = 0;
      for (const std::string& key : req.multi_get().keys()) {
        wire::KvItemResult* item = out->add_items();
        Result<KeyValue> got =
            bytes < kMaxMultiReplyBytes
                ? kv.Get(ns, key)
                : Result<KeyValue>(OutOfCapacity("kv: the reply reached " +
                                                 std::to_string(kMaxMultiReplyBytes >> 20) +
                                                 " MiB: get this key again"));
        // No such namespace is the call's error, not each key's.
        if (IsNoSuchNamespace(got.status())) return got.status();
        ItemStatusToWire(got.status(), item);
        if (got.ok()) {
          bytes += got->key.size() + got->value.size();
          ToWire(*std::move(got), item->mutable_kv());
        }
      }
      return Status::Ok();
    }
    case wire::KvRequest::kMultiPut: {
      PACKICE_RETURN_IF_ERROR(CheckMultiItems(req.multi_put().puts_size()));
      auto* out = resp->mutable_multi();
      std::vector<const wire::KvPut*> puts;
      for (const wire::KvPut& p : req.multi_put().puts()) puts.push_back(&p);
      std::vector<Result<PutResult>> results;
      PACKICE_RETURN_IF_ERROR(RunPuts(kv, ns, puts, &results));
      for (const Result<PutResult>& r : results) {
        wire::KvItemResult* item = out->add_items();
        ItemStatusToWire(r.status(), item);
        if (r.ok()) ToWire(*r, item->mutable_put());
      }
      return Status::Ok();
    }
    case wire::KvRequest::kWatch:
    case wire::KvRequest::kCancelWatch:
      return Unimplemented("kv: watches are the transport's");
    case wire::KvRequest::OP_NOT_SET:
      break;
  }
  return InvalidArgument("kv: a request with no operation");
}

Status WireKvStore::CreateNamespace(std::string_view path, const NamespaceOptions& options) {
  wire::KvRequest req;
  req.mutable_create_namespace()->set_path(std::string(path));
  ToWire(options, req.mutable_create_namespace()->mutable_options());
  return call_(req).status();
}

Status WireKvStore::DeleteNamespace(std::string_view path) {
  wire::KvRequest req;
  req.set_delete_namespace(std::string(path));
  return call_(req).status();
}

Result<std::vector<NamespaceInfo>> WireKvStore::ListNamespaces(std::string_view prefix) {
  wire::KvRequest req;
  req.mutable_list_namespaces()->set_prefix(std::string(prefix));
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse resp,
                           Expect(call_(req), wire::KvResponse::kNamespaces));
  std::vector<NamespaceInfo> out;
  for (const wire::KvNamespaceInfo& i : resp.namespaces().namespaces()) {
    PACKICE_ASSIGN_OR_RETURN(NamespaceOptions o, FromWire(i.options()));
    out.push_back({i.path(), o, i.revision(), i.keys()});
  }
  return out;
}

wire::KvRequest WireKvStore::GetRequest(std::string_view ns, std::string_view key) {
  wire::KvRequest req = OnNamespace(ns);
  req.mutable_get()->set_key(std::string(key));
  return req;
}

Result<KeyValue> WireKvStore::ParseGet(Result<wire::KvResponse> resp) {
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(std::move(resp), wire::KvResponse::kKv));
  return FromWire(std::move(*r.mutable_kv()));
}

wire::KvRequest WireKvStore::PutRequest(std::string_view ns, std::string_view key,
                                        std::string_view value, const PutOptions& options) {
  wire::KvRequest req = OnNamespace(ns);
  PutToWire(key, value, options, req.mutable_put());
  return req;
}

Result<PutResult> WireKvStore::ParsePut(Result<wire::KvResponse> resp) {
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(std::move(resp), wire::KvResponse::kPut));
  return PutFromWire(r.put());
}

Result<KeyValue> WireKvStore::Get(std::string_view ns, std::string_view key) {
  return ParseGet(call_(GetRequest(ns, key)));
}

Result<PutResult> WireKvStore::Put(std::string_view ns, std::string_view key,
                                   std::string_view value, const PutOptions& options) {
  return ParsePut(call_(PutRequest(ns, key, value, options)));
}

Result<DeleteResult> WireKvStore::Delete(std::string_view ns, std::string_view key,
                                         const DeleteOptions& options) {
  wire::KvRequest req = OnNamespace(ns);
  req.mutable_delete_()->set_key(std::string(key));
  if (options.if_mod_revision) req.mutable_delete_()->set_if_mod_revision(*options.if_mod_revision);
  req.mutable_delete_()->set_prev_kv(options.prev_kv);
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(call_(req), wire::KvResponse::kDelete));
  PutResult p = PutFromWire(r.delete_());
  return DeleteResult{p.revision, std::move(p.prev)};
}

Result<ScanResult> WireKvStore::Scan(std::string_view ns, const ScanOptions& o) {
  wire::KvRequest req = OnNamespace(ns);
  wire::KvScan* s = req.mutable_scan();
  s->set_prefix(o.prefix);
  s->set_start(o.start);
  s->set_end(o.end);
  s->set_after(o.after);
  s->set_limit(o.limit);
  s->set_keys_only(o.keys_only);
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(call_(req), wire::KvResponse::kScan));
  ScanResult out;
  out.kvs.reserve(r.scan().kvs_size());
  for (const wire::KvKeyValue& k : r.scan().kvs()) out.kvs.push_back(FromWire(k));
  out.next = r.scan().next();
  out.revision = r.scan().revision();
  return out;
}

Result<BatchResult> WireKvStore::Commit(std::string_view ns, std::span<const BatchOp> ops) {
  wire::KvRequest req = OnNamespace(ns);
  for (const BatchOp& op : ops) {
    wire::KvBatchOp* w = req.mutable_batch()->add_ops();
    w->set_delete_(op.kind == BatchOp::Kind::kDelete);
    w->set_key(op.key);
    w->set_value(op.value);
    if (op.ttl) w->set_ttl_ms(op.ttl->count());
    if (op.if_mod_revision) w->set_if_mod_revision(*op.if_mod_revision);
    w->set_ignore_missing(op.ignore_missing);
  }
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r,
                           Expect(call_(req), wire::KvResponse::kBatchRevision));
  return BatchResult{r.batch_revision()};
}

void HandleKvPuts(KvStore& kv, std::span<const wire::KvRequest* const> puts,
                  std::vector<Status>* status, std::vector<wire::KvResponse>* resp) {
  status->assign(puts.size(), Status::Ok());
  resp->assign(puts.size(), wire::KvResponse());
  if (puts.empty()) return;
  std::vector<const wire::KvPut*> bodies;
  for (const wire::KvRequest* r : puts) bodies.push_back(&r->put());
  std::vector<Result<PutResult>> results;
  RunPuts(kv, puts[0]->ns(), bodies, &results).IgnoreError();  // each put has its own answer
  for (size_t i = 0; i < puts.size(); ++i) {
    if (!results[i].ok()) {
      (*status)[i] = results[i].status();
    } else {
      ToWire(*results[i], (*resp)[i].mutable_put());
    }
  }
}

Result<std::vector<Result<KeyValue>>> WireKvStore::MultiGet(std::string_view ns,
                                                            std::span<const std::string> keys) {
  wire::KvRequest req = OnNamespace(ns);
  for (const std::string& k : keys) req.mutable_multi_get()->add_keys(k);
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(call_(req), wire::KvResponse::kMulti));
  if (r.multi().items_size() != static_cast<int>(keys.size())) {
    return ProtocolError("kv: " + std::to_string(r.multi().items_size()) + " answers to " +
                         std::to_string(keys.size()) + " keys");
  }
  std::vector<Result<KeyValue>> out;
  out.reserve(keys.size());
  for (wire::KvItemResult& item : *r.mutable_multi()->mutable_items()) {
    Status s = ItemStatusFromWire(item);
    if (s.ok()) {
      out.emplace_back(FromWire(std::move(*item.mutable_kv())));
    } else {
      out.emplace_back(std::move(s));
    }
  }
  return out;
}

Result<std::vector<Result<PutResult>>> WireKvStore::MultiPut(std::string_view ns,
                                                             std::span<const KvPutItem> puts) {
  wire::KvRequest req = OnNamespace(ns);
  for (const KvPutItem& p : puts) {
    PutToWire(p.key, p.value, p.options, req.mutable_multi_put()->add_puts());
  }
  PACKICE_ASSIGN_OR_RETURN(wire::KvResponse r, Expect(call_(req), wire::KvResponse::kMulti));
  if (r.multi().items_size() != static_cast<int>(puts.size())) {
    return ProtocolError("kv: " + std::to_string(r.multi().items_size()) + " answers to " +
                         std::to_string(puts.size()) + " puts");
  }
  std::vector<Result<PutResult>> out;
  out.reserve(puts.size());
  for (const wire::KvItemResult& item : r.multi().items()) {
    Status s = ItemStatusFromWire(item);
    if (s.ok()) {
      out.emplace_back(PutFromWire(item.put()));
    } else {
      out.emplace_back(std::move(s));
    }
  }
  return out;
}

wire::KvRequest WireKvStore::WatchRequest(std::string_view ns, const WatchOptions& o) {
  wire::KvRequest req = OnNamespace(ns);
  wire::KvWatch* w = req.mutable_watch();
  w->set_key(o.key);
  w->set_prefix(o.prefix);
  w->set_start_revision(o.start_revision);
  w->set_prev_kv(o.prev_kv);
  w->set_buffer_events(o.buffer_events);
  return req;
}

Result<std::unique_ptr<KvWatcher>> WireKvStore::Watch(std::string_view, const WatchOptions&) {
  return Unimplemented("kv: this transport's client has no watch");
}

}  // namespace packice
