#include "transport/wire_convert.h"

namespace packice {

void ToWire(const ObjectInfo& info, wire::ObjectInfo* out) {
  out->set_key(info.key);
  out->set_version(info.version);
  out->set_size(info.size);
  out->set_state(static_cast<int32_t>(info.state));
  for (const auto& [k, v] : info.meta) (*out->mutable_meta())[k] = v;
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
  info.meta = Meta(in.meta().begin(), in.meta().end());
  info.ttl = Duration(in.ttl_ms());
  info.created_unix_ms = in.created_unix_ms();
  info.expires_unix_ms = in.expires_unix_ms();
  info.tier = in.tier();
  return info;
}

void ToWire(const CreateOptions& options, wire::CreateOptions* out) {
  for (const auto& [k, v] : options.meta) (*out->mutable_meta())[k] = v;
  if (options.ttl) out->set_ttl_ms(options.ttl->count());
  out->set_exclusive(options.exclusive);
}

Result<CreateOptions> FromWire(const wire::CreateOptions& in) {
  CreateOptions options;
  options.meta = Meta(in.meta().begin(), in.meta().end());
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
