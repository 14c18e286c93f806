#include "services/cas/missing_finder.h"

#include <algorithm>
#include <latch>
#include <optional>

namespace packice {

MissingFinder::MissingFinder(std::shared_ptr<Cas> cas, size_t threads, size_t min_batch)
    : cas_(std::move(cas)), min_batch_(std::max<size_t>(min_batch, 1)) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

MissingFinder::~MissingFinder() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void MissingFinder::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

Result<std::vector<Digest>> MissingFinder::FindMissing(Cas& cas, std::span<const Digest> digests) {
  const size_t n = digests.size();
  const size_t wanted = std::min(workers_.size(), (n + min_batch_ - 1) / min_batch_);
  if (wanted <= 1) return cas.FindMissing(digests);
  const size_t per_batch = (n + wanted - 1) / wanted;
  const size_t batches = (n + per_batch - 1) / per_batch;  // none of them empty
  std::vector<std::optional<Result<std::vector<Digest>>>> results(batches);
  std::latch done(static_cast<std::ptrdiff_t>(batches));
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < batches; ++i) {
      std::span<const Digest> part =
          digests.subspan(i * per_batch, std::min(per_batch, n - i * per_batch));
      queue_.push_back([&cas, part, &results, &done, i] {
        results[i] = cas.FindMissing(part);
        done.count_down();
      });
    }
  }
  cv_.notify_all();
  done.wait();
  std::vector<Digest> missing;
  for (auto& r : results) {
    if (!r->ok()) return r->status();
    missing.insert(missing.end(), (*r)->begin(), (*r)->end());
  }
  return missing;
}

}  // namespace packice
