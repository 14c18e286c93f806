// packiced's queue (docs/queue.md): the Queue of the node's options and its metrics. daemon.cc
// hands it to the Unix socket.
#ifndef PACKICE_SERVER_NODE_QUEUE_H_
#define PACKICE_SERVER_NODE_QUEUE_H_

#include <memory>
#include <string>

#include "core/metrics.h"
#include "packice/queue.h"
#include "server/daemon.h"

namespace packice {

// Where the queue of `options` keeps its topics: "" when it keeps them in memory (--store
// memory or sharedfs without a queue directory: nothing of it survives a restart).
std::string NodeQueueDir(const DaemonOptions& options);

// The queue of `options` (nullptr when disabled), with packice_queue_* metrics in `metrics`:
// per topic and bucket records and bytes in and out, start and end offsets, bytes kept,
// appends and their time; per group and bucket the consumer lag. Tiered topics seal their
// segments into `store` (the node's own peer) under "queue/". Errors: those of OpenQueue.
Result<std::shared_ptr<Queue>> OpenNodeQueue(const DaemonOptions& options, MetricsRegistry& metrics,
                                             std::shared_ptr<LocalPeer> store);

}  // namespace packice

#endif  // PACKICE_SERVER_NODE_QUEUE_H_
