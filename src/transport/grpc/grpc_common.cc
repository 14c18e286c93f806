#include "transport/grpc/grpc_common.h"

#include <openssl/crypto.h>

#include <cctype>

namespace packice::rpc {

::grpc::StatusCode ToGrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return ::grpc::StatusCode::OK;
    case StatusCode::kNotFound:
      return ::grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return ::grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kWrongState:
    case StatusCode::kLeaseExpired:
      return ::grpc::StatusCode::FAILED_PRECONDITION;
    case StatusCode::kOutOfCapacity:
      return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kInvalidArgument:
    case StatusCode::kProtocolError:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kPermissionDenied:
      return ::grpc::StatusCode::PERMISSION_DENIED;
    case StatusCode::kUnavailable:
      return ::grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kTimeout:
      return ::grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kInternal:
      return ::grpc::StatusCode::INTERNAL;
    case StatusCode::kAborted:
      return ::grpc::StatusCode::ABORTED;
    case StatusCode::kUnimplemented:
      return ::grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kDigestMismatch:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kOutOfRange:
      return ::grpc::StatusCode::OUT_OF_RANGE;
    case StatusCode::kDataLoss:
      return ::grpc::StatusCode::DATA_LOSS;
  }
  return ::grpc::StatusCode::UNKNOWN;
}

::grpc::Status ToGrpc(const Status& status, ::grpc::ServerContextBase* context) {
  if (status.ok()) return ::grpc::Status::OK;
  context->AddTrailingMetadata(kErrorKey, std::string(StatusCodeName(status.code())));
  return ::grpc::Status(ToGrpcCode(status.code()), std::string(status.message()));
}

::grpc::Status Unauthenticated(const Status& status, ::grpc::ServerContextBase* context) {
  context->AddTrailingMetadata(kErrorKey, std::string(StatusCodeName(status.code())));
  return ::grpc::Status(::grpc::StatusCode::UNAUTHENTICATED, std::string(status.message()));
}

namespace {

std::optional<StatusCode> CodeFromName(std::string_view name) {
  for (int32_t v = 1;; ++v) {
    std::optional<StatusCode> code = StatusCodeFromInt(v);
    if (!code) return std::nullopt;
    if (StatusCodeName(*code) == name) return code;
  }
}

}  // namespace

Status FromGrpc(const ::grpc::Status& status, const ::grpc::ClientContext& context) {
  if (status.ok()) return Status::Ok();
  const auto& trailers = context.GetServerTrailingMetadata();
  if (auto it = trailers.find(kErrorKey); it != trailers.end()) {
    if (auto code = CodeFromName(std::string_view(it->second.data(), it->second.size()))) {
      return Status(*code, status.error_message());
    }
  }
  std::string message = status.error_message();
  switch (status.error_code()) {
    case ::grpc::StatusCode::NOT_FOUND:
      return NotFound(message);
    case ::grpc::StatusCode::ALREADY_EXISTS:
      return AlreadyExists(message);
    case ::grpc::StatusCode::INVALID_ARGUMENT:
      return InvalidArgument(message);
    case ::grpc::StatusCode::PERMISSION_DENIED:
      return PermissionDenied(message);
    case ::grpc::StatusCode::UNAUTHENTICATED:
      return PermissionDenied("unauthorized: " + message);
    case ::grpc::StatusCode::UNAVAILABLE:
      return Unavailable(message);
    case ::grpc::StatusCode::DEADLINE_EXCEEDED:
      return Timeout(message);
    case ::grpc::StatusCode::RESOURCE_EXHAUSTED:
      return ProtocolError(message);
    case ::grpc::StatusCode::UNIMPLEMENTED:
      return Unimplemented(message);
    case ::grpc::StatusCode::ABORTED:
    case ::grpc::StatusCode::CANCELLED:
      return Aborted(message);
    case ::grpc::StatusCode::FAILED_PRECONDITION:
      return WrongState(message);
    case ::grpc::StatusCode::DATA_LOSS:
      return DataLoss(message);
    case ::grpc::StatusCode::OUT_OF_RANGE:
      return OutOfRange(message);
    default:
      return Internal("gRPC " + std::to_string(status.error_code()) + ": " + message);
  }
}

std::string_view ClientMetadata(const ::grpc::ServerContextBase& context, std::string_view key) {
  const auto& md = context.client_metadata();
  auto it = md.find(::grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

Status CheckBearer(const ::grpc::ServerContextBase& context, std::string_view token) {
  if (token.empty()) return Status::Ok();
  std::string_view got = ClientMetadata(context, kAuthorizationKey);
  constexpr std::string_view kBearer = "bearer ";
  bool ok = got.size() == kBearer.size() + token.size();
  for (size_t i = 0; ok && i < kBearer.size(); ++i) {
    ok = std::tolower(static_cast<unsigned char>(got[i])) == kBearer[i];
  }
  if (ok) ok = CRYPTO_memcmp(got.data() + kBearer.size(), token.data(), token.size()) == 0;
  if (!ok) {
    return PermissionDenied(got.empty() ? "unauthorized: this node needs a bearer token"
                                        : "unauthorized: wrong bearer token");
  }
  return Status::Ok();
}

}  // namespace packice::rpc
