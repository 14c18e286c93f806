// What a request under /v1/kv says and what it is answered with (docs/http.md, "KV"): the
// namespace and key of its path, its query, its conditions, base64, and the JSON and
// server-sent-event bodies in both directions. Plain functions of their text, no I/O and no
// Beast, so that kv_routes.cc only carries them out and the fuzzer (fuzz/fuzz_kv_http.cc) drives
// them directly.
//
// Bytes in a URL (the key in the path, prefix/start/end/after in the query) are percent-encoded;
// bytes in JSON (keys, values, a page's "next") are base64 (RFC 4648, the standard alphabet, with
// padding).
//
// Thread safety: every function is thread-safe.
#ifndef PACKICE_TRANSPORT_HTTP_KV_REQUEST_H_
#define PACKICE_TRANSPORT_HTTP_KV_REQUEST_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "packice/kv.h"
#include "packice/status.h"

namespace packice::http_kv {

inline constexpr std::string_view kKvPath = "/v1/kv";
inline constexpr std::string_view kKvPrefix = "/v1/kv/";

// --- base64 ---------------------------------------------------------------------------------

std::string Base64Encode(std::string_view bytes);
// Strict: the standard alphabet, length a multiple of 4, '=' only as the final padding, no bits
// set past the last byte (so that decoding and encoding again gives the same text).
// nullopt for anything else.
std::optional<std::string> Base64Decode(std::string_view text);

// --- the path -------------------------------------------------------------------------------

struct KvPath {
  std::string ns;                  // "/team/ns"
  std::optional<std::string> key;  // set for /v1/kv/{ns}/{key}: any bytes, may hold '/'
};

// Parses what follows "/v1/kv/": "{ns}" or "{ns}/{key}". {ns} is one percent-encoded segment
// ("%2Fteam%2Fns", or "team%2Fns": the leading '/' is implied); {key} is the rest, percent-
// decoded. Errors: kInvalidArgument (an empty namespace, a bad escape). The namespace's shape
// is the store's to check (ValidateNamespacePath: kInvalidArgument too).
Result<KvPath> ParseKvPath(std::string_view rest);
// The {ns} segment of a namespace path: "/team/ns" -> "%2Fteam%2Fns".
std::string NamespaceSegment(std::string_view ns);

// --- the query -------------------------------------------------------------------------------

class KvQuery {
 public:
  // Errors: kInvalidArgument (a bad escape).
  static Result<KvQuery> Parse(std::string_view query);

  // Whether `name` is given ("?watch", "?watch=1"); "0" and "false" count as absent.
  bool Flag(std::string_view name) const;
  // The value of `name` (the first one), decoded; nullopt when absent.
  std::optional<std::string> Get(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, std::string>> pairs_;
};

// A scan's options from ?prefix= | ?start=&end=, &after=, &limit=, &keys_only.
// Errors: kInvalidArgument (a limit that is not a number).
Result<ScanOptions> ParseScanQuery(const KvQuery& q);

// A watch's options. `key`: the key of /v1/kv/{ns}/{key}?watch (&prefix makes it a prefix), or
// nullopt for /v1/kv/{ns}?watch&prefix=P (every key starting with P; none: the whole namespace).
// &rev=R is the first revision; a Last-Event-ID header N resumes at N + 1 (and wins over rev);
// &prev_kv; &buffer_events=N. Errors: kInvalidArgument.
Result<WatchOptions> ParseWatchQuery(const KvQuery& q, const std::optional<std::string>& key,
                                     std::optional<std::string_view> last_event_id);

// --- conditions ------------------------------------------------------------------------------

// The compare-and-swap an If-Match ("\"<mod revision>\"", or the bare number) or If-None-Match
// ("*": only if absent) asks for; nullopt: none. Errors: kInvalidArgument (both, a list, a weak
// tag, If-Match: *, anything but a revision).
Result<std::optional<int64_t>> ParseCondition(std::optional<std::string_view> if_match,
                                              std::optional<std::string_view> if_none_match);
// A put's options: ?ttl= (ParseDuration: "10s", "500ms", a bare number of seconds; 0 = none),
// ?prev_kv, and the condition.
Result<PutOptions> ParsePutOptions(const KvQuery& q, std::optional<int64_t> condition);
// Errors: kInvalidArgument (?ttl on a delete, an If-None-Match condition).
Result<DeleteOptions> ParseDeleteOptions(const KvQuery& q, std::optional<int64_t> condition);

// --- JSON bodies -----------------------------------------------------------------------------

// A namespace's options from {"engine": "swisstable"|"memtable", "write_mode": "linear"|
// "nolinear", "fsync": "always"|"interval"|"never", "fsync_interval_ms": N,
// "default_ttl_ms": N}; an empty body gives the defaults. Errors: kInvalidArgument (not that
// object, an unknown field or value).
Result<NamespaceOptions> ParseNamespaceOptions(std::string_view body);
// {"namespaces": [{"path", "engine", "write_mode", "fsync", "fsync_interval_ms",
//  "default_ttl_ms", "revision", "keys"}, ...]}
std::string NamespaceListJson(std::span<const NamespaceInfo> list);
// {"namespace": "/team/ns"}
std::string NamespaceCreatedJson(std::string_view ns);

// {"kvs": [{"key": b64, "value": b64 (not with keys_only), "create_revision",
//  "mod_revision", "version", "expires_unix_ms" (with a TTL)}, ...], "next": b64 ("" = the
//  last page), "revision": N}
std::string ScanJson(const ScanResult& page, bool keys_only);
// {"revision": N} and, when set, "prev": the replaced key as in a scan.
std::string RevisionJson(int64_t revision, const std::optional<KeyValue>& prev);

// The operations of {"ops": [{"op": "put", "key": b64, "value": b64, "ttl_ms": N,
// "if_mod_revision": N}, {"op": "delete", "key": b64, "if_mod_revision": N,
// "ignore_missing": true}, ...]}. Errors: kInvalidArgument naming the operation at fault.
Result<std::vector<BatchOp>> ParseBatch(std::string_view body);

// --- server-sent events ----------------------------------------------------------------------

// Events as SSE ("event: put|delete", "data: {json}", a blank line each). The data is
// {"type", "key", "value" (put), "create_revision", "mod_revision", "version",
// "expires_unix_ms" (with a TTL), "prev" (with prev_kv, when the key existed), "expired"}.
// The last event of each revision carries "id: <revision>", the others none: a client that
// resumes with Last-Event-ID gets the whole of a revision it saw only part of. `open_tail`: the
// last revision of `events` may go on in the next call (KvWatcher::Next split a revision bigger
// than its max_events), so it gets no id here.
std::string SseEvents(std::span<const KvEvent> events, bool open_tail = false);
// The end of a watch: "event: end", data = the error body of docs/http.md plus
// "resume_revision": where a new watch continues with no gap.
std::string SseEnd(const Status& end, int64_t resume_revision);
// A comment that keeps a quiet stream's connection alive through proxies and timeouts.
inline constexpr std::string_view kSseKeepalive = ": keepalive\n\n";

}  // namespace packice::http_kv

#endif  // PACKICE_TRANSPORT_HTTP_KV_REQUEST_H_
