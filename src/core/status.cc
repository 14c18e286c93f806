#include "packice/status.h"

#include <cstring>

namespace packice {
namespace {
constexpr std::string_view kNames[] = {
    "ok",
    "not_found",
    "already_exists",
    "wrong_state",
    "lease_expired",
    "out_of_capacity",
    "invalid_argument",
    "permission_denied",
    "unavailable",
    "protocol_error",
    "timeout",
    "internal",
    "aborted",
    "unimplemented",
    "digest_mismatch",
    "out_of_range",
    "data_loss",
};
constexpr int32_t kCodeCount = sizeof(kNames) / sizeof(kNames[0]);
}  // namespace

std::string_view StatusCodeName(StatusCode code) {
  auto i = static_cast<int32_t>(code);
  return i >= 0 && i < kCodeCount ? kNames[i] : "unknown";
}

std::optional<StatusCode> StatusCodeFromInt(int32_t value) {
  if (value < 0 || value >= kCodeCount) return std::nullopt;
  return static_cast<StatusCode>(value);
}

Status::Status(StatusCode code, std::string message) {
  if (code != StatusCode::kOk) rep_ = std::make_shared<const Rep>(Rep{code, std::move(message)});
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(StatusCodeName(code()));
  if (!rep_->message.empty()) {
    s += ": ";
    s += rep_->message;
  }
  return s;
}

#define PACKICE_DEFINE_STATUS_CTOR_(Name) \
  Status Name(std::string message) { return Status(StatusCode::k##Name, std::move(message)); }
PACKICE_DEFINE_STATUS_CTOR_(NotFound)
PACKICE_DEFINE_STATUS_CTOR_(AlreadyExists)
PACKICE_DEFINE_STATUS_CTOR_(WrongState)
PACKICE_DEFINE_STATUS_CTOR_(LeaseExpired)
PACKICE_DEFINE_STATUS_CTOR_(OutOfCapacity)
PACKICE_DEFINE_STATUS_CTOR_(InvalidArgument)
PACKICE_DEFINE_STATUS_CTOR_(PermissionDenied)
PACKICE_DEFINE_STATUS_CTOR_(Unavailable)
PACKICE_DEFINE_STATUS_CTOR_(ProtocolError)
PACKICE_DEFINE_STATUS_CTOR_(Timeout)
PACKICE_DEFINE_STATUS_CTOR_(Internal)
PACKICE_DEFINE_STATUS_CTOR_(Aborted)
PACKICE_DEFINE_STATUS_CTOR_(Unimplemented)
PACKICE_DEFINE_STATUS_CTOR_(DigestMismatch)
PACKICE_DEFINE_STATUS_CTOR_(OutOfRange)
PACKICE_DEFINE_STATUS_CTOR_(DataLoss)
#undef PACKICE_DEFINE_STATUS_CTOR_

Status ErrnoError(std::string_view what, int err) {
  std::string m(what);
  m += ": ";
  m += std::strerror(err);
  return Internal(std::move(m));
}

}  // namespace packice
