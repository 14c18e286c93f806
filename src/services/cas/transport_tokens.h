// TransportTokens: one-time tokens that let a client move blob bytes over the node's byte
// transport after the CAS negotiation (packice.rpc.CasNegotiation.GetTransportDetails) handed
// it one. A token is 128 random bits as 32 lower-case hex digits; it is good for one
// ConsumeTransportToken, until its TTL runs out. The table is bounded: only the newest
// max_tokens tokens issued can be good; issuing more drops the oldest.
//
// Thread safety: safe for concurrent use.
#ifndef PACKICE_SERVICES_CAS_TRANSPORT_TOKENS_H_
#define PACKICE_SERVICES_CAS_TRANSPORT_TOKENS_H_

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "core/mutex.h"
#include "packice/clock.h"
#include "packice/types.h"

namespace packice {

struct TransportTokenOptions {
  // How long an issued token stays good.
  Duration ttl = std::chrono::seconds(60);
  // Tokens remembered at most (spent ones included until they are the oldest).
  size_t max_tokens = 4096;
  // Time source; nullptr: the system's steady clock.
  std::shared_ptr<Clock> clock;
};

class TransportTokens {
 public:
  explicit TransportTokens(TransportTokenOptions options = {});

  // A fresh token, good once for options().ttl.
  std::string Issue();
  // True, once, for a token Issue gave that has not expired; false for any other string. The
  // token is spent either way.
  bool ConsumeTransportToken(std::string_view token);

  // Tokens held (issued, unspent, maybe expired but not yet dropped).
  size_t size();
  const TransportTokenOptions& options() const { return options_; }

 private:
  void DropExpired(Clock::TimePoint now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TransportTokenOptions options_;
  const std::shared_ptr<Clock> clock_;
  Mutex mu_;
  // Token -> expiry; and the tokens in the order they were issued (a spent token stays in the
  // queue until it reaches the front; its map entry is gone).
  absl::flat_hash_map<std::string, Clock::TimePoint> expiry_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CAS_TRANSPORT_TOKENS_H_
