#include "cli/cas_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include "cli/cli_util.h"
#include "client/cas_endpoint.h"
#include "packice/cas.h"

namespace packice::cli {
namespace {

// Transfers larger than this show a progress line on a terminal's stderr.
constexpr uint64_t kProgressBytes = 64ull << 20;

// The progress line of transfers over kProgressBytes, when stderr is a terminal; ends its line
// when it is destroyed.
class ProgressLine {
 public:
  CasEndpointOptions Options() {
    CasEndpointOptions o;
    if (!isatty(2)) return o;
    o.progress = [this](std::string_view what, uint64_t done, uint64_t total) {
      if (total <= kProgressBytes) return;
      shown_ = true;
      std::fprintf(stderr, "\r%.*s: %llu/%llu MiB (%llu%%)", static_cast<int>(what.size()),
                   what.data(), static_cast<unsigned long long>(done >> 20),
                   static_cast<unsigned long long>(total >> 20),
                   static_cast<unsigned long long>(done * 100 / total));
    };
    return o;
  }
  ~ProgressLine() {
    if (shown_) std::fputc('\n', stderr);
  }

 private:
  bool shown_ = false;
};

Result<std::string> ReadStdin() {
  std::string data;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("read stdin", errno);
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

int Put(CasEndpoint& node, const CasArgs& a) {
  const DigestAlgorithm algorithm = a.sha256 ? DigestAlgorithm::kSha256 : DigestAlgorithm::kBlake3;
  Result<Digest> d = [&]() -> Result<Digest> {
    if (a.file != "-") return node.PutFile(a.file, algorithm);  // never read whole into memory
    PACKICE_ASSIGN_OR_RETURN(std::string data, ReadStdin());
    return node.Put(std::as_bytes(std::span<const char>(data)), algorithm);
  }();
  if (!d.ok()) return Fail(d.status());
  std::cout << d->ToString() << "\n";
  return 0;
}

// "A-B" (B inclusive) or "A-" as a BlobRange. Errors: kInvalidArgument.
Result<BlobRange> ParseRange(const std::string& range) {
  const size_t dash = range.find('-');
  const auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 19 &&
           s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  const std::string first = range.substr(0, dash == std::string::npos ? 0 : dash);
  const std::string last = dash == std::string::npos ? "" : range.substr(dash + 1);
  if (dash == std::string::npos || !digits(first) || (!last.empty() && !digits(last)) ||
      (!last.empty() && std::stoull(last) < std::stoull(first))) {
    return InvalidArgument("--range wants A-B or A- (byte offsets, B inclusive, A <= B), not '" +
                           range + "'");
  }
  const uint64_t start = std::stoull(first);
  if (last.empty()) return BlobRange::Of(start, std::nullopt);
  return BlobRange::Of(start, std::stoull(last) - start + 1);
}

int Get(CasEndpoint& node, const CasArgs& a) {
  Result<Digest> d = Digest::Parse(a.digest);
  if (!d.ok()) return Fail(d.status());
  BlobRange range = BlobRange::Full();
  if (!a.range.empty()) {
    Result<BlobRange> r = ParseRange(a.range);
    if (!r.ok()) return Fail(r.status());
    range = *r;
  }
  const bool to_stdout = a.output.empty() || a.output == "-";
  const int fd =
      to_stdout ? 1 : open(a.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(ErrnoError("open " + a.output, errno));
  Status s = node.GetTo(*d, range, fd);
  if (!to_stdout) close(fd);
  if (!s.ok()) {
    if (!to_stdout) unlink(a.output.c_str());
    return Fail(s);
  }
  return 0;
}

int Missing(CasEndpoint& node, const CasArgs& a) {
  std::vector<Digest> digests;
  for (const std::string& text : a.digests) {
    Result<Digest> d = Digest::Parse(text);
    if (!d.ok()) return Fail(d.status());
    digests.push_back(*d);
  }
  Result<std::vector<Digest>> missing = node.Missing(digests);
  if (!missing.ok()) return Fail(missing.status());
  for (const Digest& d : *missing) std::cout << d.ToString() << "\n";
  return 0;
}

int Stat(CasEndpoint& node, const CasArgs& a) {
  Result<Digest> d = Digest::Parse(a.digest);
  if (!d.ok()) return Fail(d.status());
  Result<uint64_t> size = node.Stat(*d);
  if (!size.ok()) return Fail(size.status());
  std::cout << "digest: " << d->ToString() << "\nsize: " << *size << "\n";
  return 0;
}

}  // namespace

CLI::App* AddCasCommand(CLI::App& app, CasArgs* a) {
  CLI::App* cas =
      app.add_subcommand("cas", "the content-addressed store of a node: put, get, missing, stat");
  cas->require_subcommand(1);
  a->put = cas->add_subcommand("put", "store FILE (or - for stdin); prints its digest");
  a->put->add_option("file", a->file, "the file, - for stdin")->required();
  a->put->add_flag("--sha256", a->sha256, "name the blob by SHA-256 (default BLAKE3)");
  a->get = cas->add_subcommand("get", "write the blob DIGEST (or a range of it) out");
  a->get->add_option("digest", a->digest, "blake3:<hex>/<size> or sha256:<hex>/<size>")->required();
  a->get->add_option("--range", a->range, "bytes A-B (B inclusive) or A- (to the end)");
  a->get->add_option("-o,--output", a->output, "output file, - for stdout (default)");
  a->missing = cas->add_subcommand("missing", "print the DIGESTs the node does not hold");
  a->missing->add_option("digests", a->digests, "digests")->required();
  a->stat = cas->add_subcommand("stat", "show whether the node holds DIGEST, and its size");
  a->stat->add_option("digest", a->digest, "the digest")->required();
  return cas;
}

int RunCasCommand(const CasArgs& a, const std::string& url, const ClientOptions& options) {
  ProgressLine progress;
  Result<std::unique_ptr<CasEndpoint>> node = OpenCasEndpoint(url, options, progress.Options());
  if (!node.ok()) return Fail(node.status());
  if (*a.put) return Put(**node, a);
  if (*a.get) return Get(**node, a);
  if (*a.missing) return Missing(**node, a);
  return Stat(**node, a);
}

}  // namespace packice::cli
