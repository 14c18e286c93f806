#include "services/cas/transport_tokens.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>

namespace packice {
namespace {

std::string RandomToken() {
  std::array<uint8_t, 16> bits;
  // RAND_bytes fails only when OpenSSL's generator cannot be seeded: no token is safe then.
  if (RAND_bytes(bits.data(), static_cast<int>(bits.size())) != 1) std::abort();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * bits.size());
  for (uint8_t b : bits) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

}  // namespace

TransportTokens::TransportTokens(TransportTokenOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : Clock::System()) {}

std::string TransportTokens::Issue() {
  std::string token = RandomToken();
  const Clock::TimePoint now = clock_->Now();
  MutexLock lock(&mu_);
  DropExpired(now);
  while (order_.size() >= std::max<size_t>(options_.max_tokens, 1)) {
    expiry_.erase(order_.front());
    order_.pop_front();
  }
  expiry_[token] = now + options_.ttl;
  order_.push_back(token);
  return token;
}

bool TransportTokens::ConsumeTransportToken(std::string_view token) {
  const Clock::TimePoint now = clock_->Now();
  MutexLock lock(&mu_);
  auto it = expiry_.find(std::string(token));
  if (it == expiry_.end()) return false;
  const bool live = now < it->second;
  expiry_.erase(it);
  return live;
}

size_t TransportTokens::size() {
  MutexLock lock(&mu_);
  return expiry_.size();
}

void TransportTokens::DropExpired(Clock::TimePoint now) {
  // Tokens expire in issue order (one TTL for all), so the expired ones are at the front.
  while (!order_.empty()) {
    auto it = expiry_.find(order_.front());
    if (it != expiry_.end() && now < it->second) break;
    if (it != expiry_.end()) expiry_.erase(it);
    order_.pop_front();
  }
}

}  // namespace packice
