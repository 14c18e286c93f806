// Status and Result<T>: the one error type of the Packice API.
//
// Every fallible call returns a Status or a Result<T>. Both are [[nodiscard]]: a status nobody
// checked is a bug. Dropping one on purpose is spelled `status.IgnoreError()`.
//
// The numeric values of StatusCode are stable: they cross process boundaries (the Unix-socket
// protocol, the CLI's exit codes, the Python exceptions) and never change meaning. New codes are
// only ever appended. docs/errors.md lists them.
//
// Thread safety: Status and Result are values; distinct objects may be used from distinct
// threads without synchronization.
#ifndef PACKICE_STATUS_H_
#define PACKICE_STATUS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace packice {

enum class StatusCode : int32_t {
  kOk = 0,
  kNotFound = 1,          // no object under that key (or it expired)
  kAlreadyExists = 2,     // exclusive create of a key that is bound or being created
  kWrongState = 3,        // e.g. seal of a sealed object, read of an unsealed one
  kLeaseExpired = 4,      // the lease is unknown, expired or already released
  kOutOfCapacity = 5,     // the store cannot hold the object even after reclaiming pools
  kInvalidArgument = 6,   // malformed key, oversize metadata, bad size, ...
  kPermissionDenied = 7,  // the lease's mode does not allow the operation
  kUnavailable = 8,       // the node cannot be reached or went away
  kProtocolError = 9,     // a malformed, truncated or oversize frame
  kTimeout = 10,          // a bounded wait ran out
  kInternal = 11,         // a bug or an unexpected system error (errno in the message)
  kAborted = 12,          // the object was discarded before it was sealed
  kUnimplemented = 13,    // the transport or peer does not support the call
  kDigestMismatch = 14,   // content-addressed bytes whose hash or size is not their digest's
  kOutOfRange = 15,       // a byte range outside the object (starts or ends past its end)
  kDataLoss = 16,         // stored data is corrupt (a bad checksum before valid data); not repaired
};

// Returns the stable lower-case name of `code`, e.g. "not_found".
std::string_view StatusCodeName(StatusCode code);

// Returns the code for a wire value, or nullopt for a value this build does not know.
std::optional<StatusCode> StatusCodeFromInt(int32_t value);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  std::string_view message() const { return rep_ ? std::string_view(rep_->message) : ""; }

  // "not_found: no object 'a/b'" or "ok".
  std::string ToString() const;

  // Explicitly drops the status; greppable.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code() == b.code() && a.message() == b.message();
  }

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  // Null when OK, so the success path is one pointer and no allocation.
  std::shared_ptr<const Rep> rep_;
};

// Constructors for each code, e.g. NotFound("no object 'x'").
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status WrongState(std::string message);
Status LeaseExpired(std::string message);
Status OutOfCapacity(std::string message);
Status InvalidArgument(std::string message);
Status PermissionDenied(std::string message);
Status Unavailable(std::string message);
Status ProtocolError(std::string message);
Status Timeout(std::string message);
Status DigestMismatch(std::string message);
Status OutOfRange(std::string message);
Status DataLoss(std::string message);
Status Internal(std::string message);
Status Aborted(std::string message);
Status Unimplemented(std::string message);

// Internal error carrying strerror(err) after `what`.
Status ErrnoError(std::string_view what, int err);

// A T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status(StatusCode::kInternal, "Result from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

  void IgnoreError() const {}

 private:
  std::variant<T, Status> v_;
};

}  // namespace packice

#define PACKICE_CONCAT_IMPL_(a, b) a##b
#define PACKICE_CONCAT_(a, b) PACKICE_CONCAT_IMPL_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define PACKICE_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::packice::Status packice_status_ = (expr);        \
    if (!packice_status_.ok()) return packice_status_; \
  } while (0)

// `lhs = value of expr` (a Result<T>), or returns its status from the enclosing function.
#define PACKICE_ASSIGN_OR_RETURN(lhs, expr) \
  PACKICE_ASSIGN_OR_RETURN_IMPL_(PACKICE_CONCAT_(packice_result_, __LINE__), lhs, expr)
#define PACKICE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()

#endif  // PACKICE_STATUS_H_
