#include "packice/file_peer.h"

#include "backends/file/file_store.h"
#include "peers/store_peer.h"

namespace packice {

Result<std::shared_ptr<FilePeer>> FilePeer::Open(FilePeerOptions options) {
  PACKICE_ASSIGN_OR_RETURN(
      std::unique_ptr<FileStore> store,
      FileStore::Open(FileStoreOptions{options.dir, options.capacity_bytes, options.sync,
                                       options.clock, options.env}));
  std::shared_ptr<VersionSequence> versions = options.versions;
  if (!versions) {
    // After the store took the directory's lock: one process writes the mark.
    PACKICE_ASSIGN_OR_RETURN(
        versions, VersionSequence::OpenDurable(options.dir + "/VERSION", 1u << 16, options.env));
  }
  auto peer = std::make_shared<StorePeer<FilePeer>>(
      std::move(store),
      LeasePolicy{options.default_lease_ttl, options.default_object_ttl, options.max_lease_ttl,
                  options.background_threads, options.clock, std::move(versions)});
  PACKICE_RETURN_IF_ERROR(peer->Start());
  return std::shared_ptr<FilePeer>(std::move(peer));
}

}  // namespace packice
