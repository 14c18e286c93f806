// sendmsg/recvmsg with descriptors attached (SCM_RIGHTS), for the Unix-socket transport.
#ifndef PACKICE_TRANSPORT_UDS_FD_SOCKET_H_
#define PACKICE_TRANSPORT_UDS_FD_SOCKET_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "packice/blob.h"
#include "packice/status.h"

namespace packice {

// Most descriptors sent with one sendmsg (the kernel's SCM_MAX_FD is 253).
inline constexpr size_t kMaxFdsPerSend = 200;

// A blocking stream socket connected to the Unix socket at `path` (close-on-exec). Errors:
// kInvalidArgument (path length), kUnavailable (no node listening there).
Result<UniqueFd> ConnectUnixSocket(const std::string& path);

// Sends a prefix of `data`, attaching `fds` (REQUIRES: at most kMaxFdsPerSend) to its first
// byte. Returns the bytes sent; 0 when a non-blocking socket would block (nothing was sent,
// descriptors included). Never raises SIGPIPE.
Result<size_t> SendSome(int sock, std::string_view data, std::span<const int> fds);

// Sends all of `data` on a blocking socket, `fds` with the first byte.
Status SendAll(int sock, std::string_view data, std::span<const int> fds);

// Receives up to buf.size() bytes; descriptors that arrive are appended to `fds` (close-on-exec).
// Returns 0 at end of stream. kUnavailable on a reset, kTimeout when SO_RCVTIMEO ran out.
Result<size_t> RecvWithFds(int sock, std::span<char> buf, std::vector<int>* fds);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_FD_SOCKET_H_
