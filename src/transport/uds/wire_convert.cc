#include "transport/uds/wire_convert.h"

namespace packice {
namespace {

void MetaToWire(const Meta& meta, google::protobuf::RepeatedPtrField<wire::MetaEntry>* out) {
  out->Reserve(static_cast<int>(meta.size()));
  for (const auto& [k, v] : meta) {
    wire::MetaEntry* e = out->Add();
    e->set_name(k);
    e->set_value(v);
  }
}

// A repeated name keeps its last value, as a protobuf map would.
Meta MetaFromWire(const google::protobuf::RepeatedPtrField<wire::MetaEntry>& in) {
  Meta meta;
  for (const wire::MetaEntry& e : in) meta[e.name()] = e.value();
  return meta;
}

}  // namespace

void ToWire(const ObjectInfo& info, wire::ObjectInfo* out) {
  out->set_key(info.key);
  out->set_version(info.version);
  out->set_size(info.size);
  out->set_state(static_cast<int32_t>(info.state));
  MetaToWire(info.meta, out->mutable_meta());
  out->set_ttl_ms(info.ttl.count());
  out->set_created_unix_ms(info.created_unix_ms);
  out->set_expires_unix_ms(info.expires_unix_ms);
  out->set_tier(info.tier);
}

ObjectInfo FromWire(const wire::ObjectInfo& in) {
  ObjectInfo info;
  info.key = in.key();
  info.version = in.version();
  info.size = in.size();
  info.state = in.state() == 1 ? ObjectState::kSealed : ObjectState::kCreating;
  info.meta = MetaFromWire(in.meta());
  info.ttl = Duration(in.ttl_ms());
  info.created_unix_ms = in.created_unix_ms();
  info.expires_unix_ms = in.expires_unix_ms();
  info.tier = in.tier();
  return info;
}

void ToWire(const CreateOptions& options, wire::CreateOptions* out) {
  MetaToWire(options.meta, out->mutable_meta());
  if (options.ttl) out->set_ttl_ms(options.ttl->count());
  out->set_exclusive(options.exclusive);
}

Result<CreateOptions> FromWire(const wire::CreateOptions& in) {
  CreateOptions options;
  options.meta = MetaFromWire(in.meta());
  if (in.has_ttl_ms()) {
    if (in.ttl_ms() < 0) return InvalidArgument("negative object TTL");
    options.ttl = Duration(in.ttl_ms());
  }
  options.exclusive = in.exclusive();
  return options;
}

void ToWire(const Status& status, wire::Response* out) {
  out->set_code(static_cast<int32_t>(status.code()));
  if (!status.ok()) out->set_message(std::string(status.message()));
}

Status StatusFromWire(const wire::Response& in) {
  auto code = StatusCodeFromInt(in.code());
  if (!code) {
    return ProtocolError("unknown status code " + std::to_string(in.code()) + ": " + in.message());
  }
  return Status(*code, in.message());
}

}  // namespace packice
