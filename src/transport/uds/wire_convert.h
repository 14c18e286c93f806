// Conversions between the API's value types and their wire messages.
#ifndef PACKICE_TRANSPORT_UDS_WIRE_CONVERT_H_
#define PACKICE_TRANSPORT_UDS_WIRE_CONVERT_H_

#include "packice/status.h"
#include "packice/types.h"
#include "transport/uds/wire.pb.h"

namespace packice {

void ToWire(const ObjectInfo& info, wire::ObjectInfo* out);
ObjectInfo FromWire(const wire::ObjectInfo& in);

void ToWire(const CreateOptions& options, wire::CreateOptions* out);
// kInvalidArgument for values no valid client sends (negative TTL).
Result<CreateOptions> FromWire(const wire::CreateOptions& in);

void ToWire(const Status& status, wire::Response* out);
// The response's status; an unknown code becomes kProtocolError.
Status StatusFromWire(const wire::Response& in);

}  // namespace packice

#endif  // PACKICE_TRANSPORT_UDS_WIRE_CONVERT_H_
