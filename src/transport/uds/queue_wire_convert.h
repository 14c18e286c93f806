// The queue API (include/packice/queue.h) in the messages of queue_wire.proto, both ways: the
// node's side runs a QueueRequest on its Queue (HandleQueueRequest); the client's side is a
// Queue whose every call is one QueueRequest (NewWireQueue), over whatever carries them.
#ifndef PACKICE_TRANSPORT_UDS_QUEUE_WIRE_CONVERT_H_
#define PACKICE_TRANSPORT_UDS_QUEUE_WIRE_CONVERT_H_

#include <functional>
#include <memory>
#include <vector>

#include "packice/queue.h"
#include "transport/uds/queue_wire.pb.h"

namespace packice {

void ToWire(const QueueRecord& r, wire::QueueRecordMsg* out);
QueueRecord FromWire(const wire::QueueRecordMsg& in);
// The same, moving the bytes out of `in`.
QueueRecord FromWire(wire::QueueRecordMsg&& in);
void ToWire(const TopicOptions& o, wire::QueueTopicOptions* out);
// Errors: kInvalidArgument (an fsync policy out of range).
Result<TopicOptions> FromWire(const wire::QueueTopicOptions& in);

// Runs `req` on `queue`; a read does not wait (its wait_ms is the caller's to honour: see
// queue_calls.h), and an append's records are moved out of `req`. Errors: the call's,
// kInvalidArgument (no operation, a negative limit).
Status HandleQueueRequest(Queue& queue, wire::QueueRequest& req, wire::QueueResponse* resp);
// An append request's records, moved out of `req` (REQUIRES: req.has_append()).
std::vector<QueueRecord> AppendRecords(wire::QueueRequest& req);
// Whether `resp` is a read that found nothing (a waiting read parks then).
bool IsEmptyRead(const wire::QueueResponse& resp);

// Sends one request and returns its answer (a transport's call).
using QueueCaller = std::function<Result<wire::QueueResponse>(wire::QueueRequest)>;
// A Queue whose calls go through `call`. Subscribe answers kUnimplemented (a remote reader
// waits with Read's `wait`).
std::shared_ptr<Queue> NewWireQueue(QueueCaller call);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_QUEUE_WIRE_CONVERT_H_
