// libFuzzer target: digest text (include/packice/cas.h) as CAS clients send it, in resource
// names and requests. Any crash or sanitizer report is a bug; so is a digest that parses but
// does not survive a round trip through ToString (and ToBareString), text accepted in any
// spelling but the one canonical form (the parser is strict), or an error message that quotes
// more than a bounded part of the input.
//
//   fuzz_digest -max_total_time=60 NEW_CORPUS_DIR fuzz/corpus/digest
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "packice/cas.h"

namespace {

using packice::Digest;
using packice::DigestAlgorithm;
using packice::Result;

constexpr size_t kMaxMessageBytes = 300;  // about 80 characters of the input, and the reason

void Check(std::string_view text, DigestAlgorithm bare) {
  Result<Digest> digest = Digest::Parse(text, bare);
  if (!digest.ok()) {
    if (digest.status().code() != packice::StatusCode::kInvalidArgument) std::abort();
    if (digest.status().message().size() > kMaxMessageBytes) std::abort();
    return;
  }
  if (text != digest->ToString() && text != digest->ToBareString()) std::abort();
  if (text == digest->ToBareString() && digest->algorithm != bare) std::abort();
  Result<Digest> again = Digest::Parse(digest->ToString());
  if (!again.ok() || !(*again == *digest)) std::abort();
  Result<Digest> bare_again = Digest::Parse(digest->ToBareString(), digest->algorithm);
  if (!bare_again.ok() || !(*bare_again == *digest)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  Check(text, DigestAlgorithm::kSha256);
  Check(text, DigestAlgorithm::kBlake3);
  return 0;
}
