// HttpOrigin: a cache group's getter that loads a key's value from an HTTP(S) origin.
//
//   auto origin = HttpOrigin::Create("http://db-api:8000/users/{key}", {.timeout = 2s});
//   Group users("users", 64 << 20, (*origin)->Getter());
//
// A miss of key K is a GET of the template with {key} replaced by K percent-encoded (every byte
// but A-Z a-z 0-9 - . _ ~, so a '/' in a key stays inside its path segment). The answer:
//   2xx                     the body is the value (at most max_value_bytes: a longer body is
//                           aborted mid-transfer, kInvalidArgument "origin value too large")
//   404                     kNotFound
//   other statuses          kUnavailable, with the status (3xx are not followed)
//   no connection           kUnavailable
//   no answer in `timeout`  kTimeout
//
// Thread safety: Load is safe to call concurrently. Connections are reused: idle curl handles
// (each with its connection cache) wait in a small pool.
#ifndef PACKICE_SERVICES_CACHE_HTTP_ORIGIN_H_
#define PACKICE_SERVICES_CACHE_HTTP_ORIGIN_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "packice/cache.h"
#include "packice/status.h"
#include "packice/types.h"

namespace packice {

struct HttpOriginOptions {
  // The whole load (connect, request, body); past it, kTimeout.
  Duration timeout{10'000};
  // The largest value (body) accepted.
  uint64_t max_value_bytes = 1 << 20;
  // Idle curl handles kept for reuse (more loads at once open more, then close them).
  size_t max_idle_handles = 8;
};

// Checks a URL template: http:// or https://, a host, exactly one "{key}" (in the path or the
// query), no other braces, no spaces or control characters, no credentials (they would show in
// listings and logs). Errors: kInvalidArgument saying what is wrong, with an example.
Status ValidateOriginTemplate(std::string_view url_template);

// `key` with every byte but A-Z a-z 0-9 - . _ ~ as %XX.
std::string PercentEncodeKey(std::string_view key);

class HttpOrigin : public std::enable_shared_from_this<HttpOrigin> {
 public:
  // Errors: kInvalidArgument (ValidateOriginTemplate), kInternal (libcurl failed to start).
  static Result<std::shared_ptr<HttpOrigin>> Create(std::string url_template,
                                                    HttpOriginOptions options = {});
  ~HttpOrigin();
  HttpOrigin(const HttpOrigin&) = delete;
  HttpOrigin& operator=(const HttpOrigin&) = delete;

  // The value of `key` at the origin; errors as the file comment says.
  Result<std::string> Load(std::string_view key) const;

  // The URL a load of `key` fetches.
  std::string UrlFor(std::string_view key) const;

  // A getter calling Load; it keeps this origin alive.
  CacheGetter Getter() const;

  const std::string& url_template() const { return template_; }

 private:
  HttpOrigin(std::string url_template, HttpOriginOptions options);
  void* TakeHandle() const;
  void ReturnHandle(void* handle) const;

  const std::string template_;
  const HttpOriginOptions options_;
  mutable std::mutex mu_;
  mutable std::vector<void*> idle_;  // CURL*, guarded by mu_
};

}  // namespace packice

#endif  // PACKICE_SERVICES_CACHE_HTTP_ORIGIN_H_
