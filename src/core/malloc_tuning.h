// glibc malloc settings for a process that moves buffers of about a megabyte: a node's main
// (packiced) and the benchmarks that stand in for one.
#ifndef PACKICE_CORE_MALLOC_TUNING_H_
#define PACKICE_CORE_MALLOC_TUNING_H_

#include <malloc.h>

namespace packice {

// Streams between nodes (gRPC) pass through buffers of about a megabyte, and values loaded
// from an origin are as large. By default glibc maps each such block afresh and unmaps it when
// freed (until a freed one raises its threshold), so every block pays page faults for memory
// the kernel zeroes: a fetch from another node ran at a quarter of the speed, a load from an
// origin at half. Keeps blocks up to 32 MiB on the heap, and up to 128 MiB of freed heap
// untrimmed. Process-wide: call it first thing in main.
inline void TuneMallocForLargeBlocks() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

}  // namespace packice

#endif  // PACKICE_CORE_MALLOC_TUNING_H_
