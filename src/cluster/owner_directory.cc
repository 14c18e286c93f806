#include "cluster/owner_directory.h"

#include <map>
#include <mutex>

#include "cluster/etcd_client.h"

namespace packice {
namespace {

class EtcdOwnerDirectory final : public OwnerDirectory {
 public:
  EtcdOwnerDirectory(std::shared_ptr<cluster::EtcdClient> etcd, std::string prefix)
      : etcd_(std::move(etcd)), prefix_(std::move(prefix)) {}

  std::optional<std::string> Owner(std::string_view name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = owners_.find(name);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }

  Result<std::string> Claim(std::string_view name, std::string_view owner) override {
    PACKICE_ASSIGN_OR_RETURN(std::string recorded,
                             etcd_->CreateOrGet(prefix_ + std::string(name), owner));
    std::lock_guard<std::mutex> lock(mu_);
    owners_.insert_or_assign(std::string(name), recorded);
    return recorded;
  }

  Status Release(std::string_view name) override {
    PACKICE_RETURN_IF_ERROR(etcd_->Delete(prefix_ + std::string(name)).status());
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = owners_.find(name); it != owners_.end()) owners_.erase(it);
    return Status::Ok();
  }

  Status Refresh() override {
    PACKICE_ASSIGN_OR_RETURN(cluster::EtcdRange range,
                             etcd_->GetPrefix(prefix_.ends_with('/') ? prefix_ : prefix_ + "/"));
    std::map<std::string, std::string, std::less<>> owners;
    for (cluster::EtcdKeyValue& kv : range.kvs) {
      owners.emplace(kv.key.substr(prefix_.size()), std::move(kv.value));
    }
    std::lock_guard<std::mutex> lock(mu_);
    owners_ = std::move(owners);
    return Status::Ok();
  }

  std::vector<std::pair<std::string, std::string>> List() override {
    std::lock_guard<std::mutex> lock(mu_);
    return {owners_.begin(), owners_.end()};
  }

 private:
  const std::shared_ptr<cluster::EtcdClient> etcd_;
  const std::string prefix_;
  std::mutex mu_;
  std::map<std::string, std::string, std::less<>> owners_;  // guarded by mu_
};

}  // namespace

std::shared_ptr<OwnerDirectory> NewEtcdOwnerDirectory(std::shared_ptr<cluster::EtcdClient> etcd,
                                                      std::string prefix) {
  return std::make_shared<EtcdOwnerDirectory>(std::move(etcd), std::move(prefix));
}

}  // namespace packice
