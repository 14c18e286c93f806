// A blocking HTTP request for tests that talk to a real packiced's HTTP port (libcurl).
#ifndef PACKICE_TESTS_HTTP_TESTING_H_
#define PACKICE_TESTS_HTTP_TESTING_H_

#include <string>
#include <vector>

namespace packice::testing {

struct HttpReply {
  long status = 0;  // 0: no answer (see error)
  std::string body;
  std::string headers;  // as received, lower-cased
  std::string error;    // curl's, when no answer
  bool Has(const std::string& header_line) const {
    return headers.find(header_line) != std::string::npos;
  }
};

// Sends `method` to `url` (the path as given: no dot segments removed) with `body` when not
// null and the extra `headers` ("Name: value"); HEAD reads no body. Waits 30 s at most.
HttpReply Http(const std::string& method, const std::string& url, const std::string* body = nullptr,
               std::vector<std::string> headers = {});

}  // namespace packice::testing

#endif  // PACKICE_TESTS_HTTP_TESTING_H_
