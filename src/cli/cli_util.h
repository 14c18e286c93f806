// What every packice subcommand prints the same way.
#ifndef PACKICE_CLI_CLI_UTIL_H_
#define PACKICE_CLI_CLI_UTIL_H_

#include <iostream>
#include <string_view>

#include "packice/status.h"

namespace packice::cli {

// "packice: <code>: <message>" on stderr; the exit code 1.
inline int Fail(const Status& s) {
  std::cerr << "packice: " << s.ToString() << "\n";
  return 1;
}

// `s` and a newline on stdout, bytes as they are.
inline void Line(std::string_view s) {
  std::cout.write(s.data(), static_cast<std::streamsize>(s.size()));
  std::cout << '\n';
}

}  // namespace packice::cli

#endif  // PACKICE_CLI_CLI_UTIL_H_
