#include "services/cas/owner_cas.h"

#include <utility>

namespace packice {

void OwnerCas::Update(std::string self_id, Ring ring, Members members) {
  auto next =
      std::make_shared<const State>(State{std::move(self_id), std::move(ring), std::move(members)});
  std::lock_guard lock(mu_);
  state_ = std::move(next);
}

std::shared_ptr<const OwnerCas::State> OwnerCas::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

Cas* OwnerCas::State::OwnerOf(const Digest& digest) const {
  std::optional<std::string_view> owner = ring.Owner(digest.ToString());
  if (!owner || *owner == self_id) return nullptr;
  auto it = members.find(*owner);
  return it == members.end() ? nullptr : it->second.get();
}

Status OwnerCas::Store(const Digest& digest, std::span<const std::byte> data) {
  std::shared_ptr<const State> s = state();
  Cas* owner = s->OwnerOf(digest);
  return owner == nullptr ? Status::Ok() : owner->Store(digest, data);
}

Result<uint64_t> OwnerCas::Check(const Digest& digest) {
  std::shared_ptr<const State> s = state();
  Cas* owner = s->OwnerOf(digest);
  if (owner == nullptr) return NotFound("this node owns " + digest.ToString());
  return owner->Check(digest);
}

Result<std::vector<Digest>> OwnerCas::FindMissing(std::span<const Digest> digests) {
  std::shared_ptr<const State> s = state();
  // Each owner's digests, by their index in `digests`.
  std::map<Cas*, std::vector<size_t>> by_owner;
  std::vector<bool> missing(digests.size(), false);
  for (size_t i = 0; i < digests.size(); ++i) {
    Cas* owner = s->OwnerOf(digests[i]);
    if (owner == nullptr) {
      missing[i] = true;
    } else {
      by_owner[owner].push_back(i);
    }
  }
  for (auto& [owner, indexes] : by_owner) {
    std::vector<Digest> asked;
    asked.reserve(indexes.size());
    for (size_t i : indexes) asked.push_back(digests[i]);
    PACKICE_ASSIGN_OR_RETURN(std::vector<Digest> lacking, owner->FindMissing(asked));
    // The owner answers in the order asked: walk both lists together.
    size_t at = 0;
    for (const Digest& d : lacking) {
      while (at < asked.size() && asked[at] != d) ++at;
      if (at == asked.size()) return Internal("an owner named a digest it was not asked");
      missing[indexes[at++]] = true;
    }
  }
  std::vector<Digest> out;
  for (size_t i = 0; i < digests.size(); ++i) {
    if (missing[i]) out.push_back(digests[i]);
  }
  return out;
}

Result<CasBlob> OwnerCas::Fetch(const Digest& digest, BlobRange range) {
  std::shared_ptr<const State> s = state();
  Cas* owner = s->OwnerOf(digest);
  if (owner == nullptr) return NotFound("this node owns " + digest.ToString());
  return owner->Fetch(digest, range);
}

}  // namespace packice
