// packice: the command line client.
//
//   packice put KEY FILE|- [--ttl 1h] [--meta k=v]... [--exclusive]
//   packice get KEY [-o FILE|-]
//   packice stat KEY
//   packice ls [PREFIX] [--limit N]
//   packice rm KEY
//   packice group get GROUP KEY | set GROUP KEY VALUE|- [--ttl 30s] | del GROUP KEY |
//                 stats GROUP | ls          (cache groups: http(s):// and grpc(s):// URLs only)
//   packice cas put FILE|- [--sha256] | get DIGEST [--range A-B] [-o FILE] |
//               missing DIGEST... | stat DIGEST   (the node's CAS: http(s):// URLs only)
//   packice kv put NS KEY VALUE|- [--ttl 30s] [--if-rev R] | get NS KEY [--prefix] [--to END] |
//              del NS KEY [--prefix] | watch NS [KEY] [--prefix] [--rev R] [--prev-kv] |
//              ns create NS [--engine E] [--mode M] [--fsync F] | ns ls [PREFIX] | ns rm NS
//                                                 (the KV: uds:// and grpc(s):// URLs)
//   packice queue create TOPIC [--buckets N] [--fsync F] [--retention-bytes B] | ls | rm TOPIC |
//                 produce TOPIC [VALUE] [--key K] [--header N=V] | stat TOPIC |
//                 consume TOPIC [--group G] [--limit N] [--wait 1s] [--no-commit] |
//                 export TOPIC FILE | import TOPIC FILE        (the queue: uds:// URLs)
//
// Global flags: --url (uds://, http://, https://, grpc://, grpcs://), --token and --ca-file
// (HTTP and gRPC).
//
// Exit status: 0 on success, 1 with a one-line "packice: <code>: <message>" on failure,
// 2 on a usage error.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <vector>

#include "cli/cas_command.h"
#include "cli/group_command.h"
#include "cli/kv_command.h"
#include "cli/queue_command.h"
#include "core/parse.h"
#include "packice/client.h"

namespace {

using packice::Result;
using packice::Status;

int Fail(const Status& s) {
  std::cerr << "packice: " << s.ToString() << "\n";
  return 1;
}

Status ReadFully(int fd, std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return packice::ErrnoError("read", errno);
    if (n == 0) return packice::InvalidArgument("input shrank while it was read");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status WriteFully(int fd, std::span<const std::byte> data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return packice::ErrnoError("write", errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads `fd` to its end.
Result<std::vector<std::byte>> ReadAll(int fd) {
  std::vector<std::byte> data;
  std::byte buf[1 << 16];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return packice::ErrnoError("read", errno);
    if (n == 0) return data;
    data.insert(data.end(), buf, buf + n);
  }
}

Result<packice::ObjectInfo> PutFile(packice::Client& client, const std::string& key,
                                    const std::string& path, packice::CreateOptions options) {
  if (path == "-") {  // unknown size: read it all, then one put
    auto data = ReadAll(0);
    if (!data.ok()) return data.status();
    return client.Put(key, *data, std::move(options));
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return packice::InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    Status s = packice::ErrnoError("stat " + path, errno);
    close(fd);
    return s;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return packice::InvalidArgument(path + " is a directory");
  }
  if (!S_ISREG(st.st_mode)) {  // a pipe or a device has no size to trust: read it all
    auto data = ReadAll(fd);
    close(fd);
    if (!data.ok()) return data.status();
    return client.Put(key, *data, std::move(options));
  }
  // Known size: read straight into the node's memory.
  auto writer = client.Create(key, static_cast<uint64_t>(st.st_size), std::move(options));
  if (!writer.ok()) {
    close(fd);
    return writer.status();
  }
  Status s = ReadFully(fd, writer->data());
  close(fd);
  if (!s.ok()) return s;
  return writer->Seal();
}

void PrintInfo(const packice::ObjectInfo& info) {
  std::cout << "key: " << info.key << "\n"
            << "size: " << info.size << "\n"
            << "version: " << info.version << "\n"
            << "state: " << (info.state == packice::ObjectState::kSealed ? "sealed" : "creating")
            << "\n"
            << "tier: " << info.tier << "\n"
            << "ttl_ms: " << info.ttl.count() << "\n"
            << "created_unix_ms: " << info.created_unix_ms << "\n"
            << "expires_unix_ms: " << info.expires_unix_ms << "\n";
  for (const auto& [k, v] : info.meta) std::cout << "meta." << k << ": " << v << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"packice: command line client for a Packice node"};
  app.require_subcommand(1);
  std::string url = packice::DefaultUrl();
  app.add_option("--url", url,
                 "node URL: uds:///path/to/socket, http://host:port or https://host:port "
                 "(default $PACKICE_URL)");
  packice::ClientOptions client_options;
  app.add_option("--token", client_options.http_token,
                 "bearer token for an HTTP node started with a token (default $PACKICE_TOKEN)");
  app.add_option("--ca-file", client_options.http_ca_file,
                 "PEM CA bundle to verify an https node with (default $PACKICE_CA_FILE, else the "
                 "system's)");

  std::string key, file, out = "-", ttl, prefix;
  std::vector<std::string> meta;
  bool exclusive = false;
  uint32_t limit = 0;

  auto* put = app.add_subcommand("put", "store FILE (or - for stdin) under KEY");
  put->add_option("key", key, "object key")->required();
  put->add_option("file", file, "file to store, - for stdin")->required();
  put->add_option("--ttl", ttl, "object TTL, e.g. 30s, 1h");
  put->add_option("--meta", meta, "metadata name=value (repeatable)");
  put->add_flag("--exclusive", exclusive, "fail if KEY exists");

  auto* get = app.add_subcommand("get", "write the object under KEY to a file or stdout");
  get->add_option("key", key, "object key")->required();
  get->add_option("-o,--output", out, "output file, - for stdout (default)");

  auto* stat = app.add_subcommand("stat", "show an object's information");
  stat->add_option("key", key, "object key")->required();

  auto* ls = app.add_subcommand("ls", "list keys, with sizes");
  ls->add_option("prefix", prefix, "key prefix");
  ls->add_option("--limit", limit, "most keys to list (default all)");

  auto* rm = app.add_subcommand("rm", "delete the object under KEY");
  rm->add_option("key", key, "object key")->required();

  packice::cli::GroupArgs group_args;
  auto* group = packice::cli::AddGroupCommand(app, &group_args);
  packice::cli::CasArgs cas_args;
  auto* cas = packice::cli::AddCasCommand(app, &cas_args);
  packice::cli::KvArgs kv_args;
  auto* kv = packice::cli::AddKvCommand(app, &kv_args);
  packice::cli::QueueArgs queue_args;
  auto* queue = packice::cli::AddQueueCommand(app, &queue_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints the message (or the help) and returns CLI11's own code; ours is 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  // Groups have their own calls (and no Unix-socket transport): they need no Client.
  if (*group) return packice::cli::RunGroupCommand(group_args, url, client_options);
  if (*cas) return packice::cli::RunCasCommand(cas_args, url, client_options);
  if (*kv) return packice::cli::RunKvCommand(kv_args, url, client_options);
  if (*queue) return packice::cli::RunQueueCommand(queue_args, url);

  auto client = packice::Connect(url, client_options);
  if (!client.ok()) return Fail(client.status());

  if (*put) {
    packice::CreateOptions options;
    options.exclusive = exclusive;
    if (!ttl.empty()) {
      auto d = packice::ParseDuration(ttl);
      if (!d.ok()) return Fail(d.status());
      options.ttl = *d;
    }
    for (const std::string& m : meta) {
      auto eq = m.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail(packice::InvalidArgument("--meta wants name=value, got '" + m + "'"));
      }
      options.meta[m.substr(0, eq)] = m.substr(eq + 1);
    }
    auto info = PutFile(*client, key, file, std::move(options));
    if (!info.ok()) return Fail(info.status());
    std::cerr << "stored " << info->key << " (" << info->size << " bytes, version " << info->version
              << ")\n";
    return 0;
  }
  if (*get) {
    auto reader = client->Get(key);
    if (!reader.ok()) return Fail(reader.status());
    int fd = 1;
    if (out != "-") {
      fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0)
        return Fail(packice::InvalidArgument("cannot open " + out + ": " + std::strerror(errno)));
    }
    Status s = WriteFully(fd, reader->data());
    if (fd != 1) close(fd);
    return s.ok() ? 0 : Fail(s);
  }
  if (*stat) {
    auto info = client->Stat(key);
    if (!info.ok()) return Fail(info.status());
    PrintInfo(*info);
    return 0;
  }
  if (*ls) {
    packice::ListOptions options;
    options.prefix = prefix;
    uint64_t printed = 0;
    while (true) {
      auto page = client->List(options);
      if (!page.ok()) return Fail(page.status());
      for (const auto& info : page->objects) {
        if (limit != 0 && printed == limit) return 0;
        std::cout << info.size << "\t" << info.key << "\n";
        ++printed;
      }
      if (!page->truncated || page->objects.empty()) return 0;
      options.start_after = page->objects.back().key;
    }
  }
  if (*rm) {
    Status s = client->Delete(key);
    return s.ok() ? 0 : Fail(s);
  }
  return 2;
}
