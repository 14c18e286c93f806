#include "server/daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <thread>
#include <vector>

#include "packice/client.h"

namespace packice {

int RunDaemon(const DaemonOptions& options) {
  auto level = spdlog::level::from_str(options.log_level);
  if (level == spdlog::level::off && options.log_level != "off") {
    spdlog::error("event=bad_flag flag=--log-level value=\"{}\"", options.log_level);
    return 2;
  }
  spdlog::set_level(level);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z level=%l %v");

  boost::asio::io_context io;
  std::shared_ptr<MemoryPeer> peer = MemoryPeer::Create(options.memory);

  UdsServerOptions uds;
  uds.path = options.socket_path.empty() ? DefaultSocketPath() : options.socket_path;
  uds.limits = options.limits;
  UdsServer server(io, peer, uds);
  if (Status s = server.Start(); !s.ok()) {
    spdlog::error("event=start_failed transport=uds error=\"{}\"", s.ToString());
    return 1;
  }

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("event=shutdown signal={}", sig);
    io.stop();  // the server stops below, once no io thread can be inside it
  });

  spdlog::info("event=ready pid={} url=uds://{} capacity_bytes={} io_threads={}", getpid(),
               uds.path, options.memory.capacity_bytes, options.io_threads);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < options.io_threads; ++i) threads.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  server.Stop();  // stops accepting and removes the socket; connections close with `io`
  MemoryPeer::Stats st = peer->GetStats();
  spdlog::info("event=stopped objects={} used_bytes={}", st.objects, st.used_bytes);
  return 0;
}

}  // namespace packice
