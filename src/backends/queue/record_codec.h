// The bytes of a queue record (include/packice/queue.h) in a backend's storage: one log
// record's payload per queue record (docs/queue.md, "Record encoding"). Little-endian:
//
//   u8  format         1
//   u8  flags          bit 0: a key follows; the other bits are 0
//   i64 timestamp      milliseconds since the Unix epoch
//   [u32 length, key]  when flags bit 0
//   u32 header count   then, per header: u32 length, name, u32 length, value
//   u32 length, value
//
// Nothing may follow the value. Decoding checks every length against the bytes left before it
// allocates, so a corrupt record costs at most its own size.
#ifndef PACKICE_BACKENDS_QUEUE_RECORD_CODEC_H_
#define PACKICE_BACKENDS_QUEUE_RECORD_CODEC_H_

#include <cstddef>
#include <span>
#include <string>

#include "packice/queue.h"
#include "packice/status.h"

namespace packice {

inline constexpr uint8_t kQueueRecordFormat = 1;

// The encoded size of `r` (what a backend charges against its byte limits).
size_t EncodedRecordBytes(const QueueRecord& r);
// A timestamp of 0 is encoded as `unset_timestamp`.
void EncodeRecord(const QueueRecord& r, std::string* out, int64_t unset_timestamp = 0);
// Errors: kDataLoss (not a record of this format: the message says what is wrong).
Result<QueueRecord> DecodeRecord(std::span<const std::byte> bytes);

}  // namespace packice

#endif  // PACKICE_BACKENDS_QUEUE_RECORD_CODEC_H_
