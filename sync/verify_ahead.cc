#include "sync/verify_ahead.h"

#include <cassert>
#include <exception>
#include <system_error>
#include <utility>


namespace aidsync {

VerifyAhead::VerifyAhead(const std::vector<std::string>& envelopes, size_t window, const ChangesetLimits& limits)
    : envelopes_(envelopes), window_(window < 1 ? 1 : window), limits_(limits) {
  try {
    if (envelopes_.size() > 1) worker_ = std::thread([this] { Run(); });
  } catch (const std::system_error&) {
    // No thread to be had (a process limit): Take decodes on the caller's thread.
  }
}

VerifyAhead::~VerifyAhead() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void VerifyAhead::Run() {
  for (size_t i = 0; i < envelopes_.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || ready_.size() < window_; });
      if (stop_) return;
    }
    Digest id;
    std::exception_ptr failure;
    Result<ChangesetContent> content = Status::Unavailable("not decoded");
    std::string stored;
    try {
      content = DecodeChangeset(envelopes_[i], &id, limits_);
      if (content.ok()) stored = packer_.PackStored(envelopes_[i]);
    } catch (...) {
      // Out of memory, say: rethrown by Take on the caller's thread, as if
      // it had decoded there, rather than ending the process from here.
      failure = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(Decoded{id, std::move(content), std::move(stored), failure});
    }
    cv_.notify_all();
  }
}

Result<ChangesetContent> VerifyAhead::Take(size_t i, Digest* id, std::string* stored) {
  stored->clear();
  if (!worker_.joinable()) return DecodeChangeset(envelopes_[i], id, limits_);
  std::unique_lock<std::mutex> lock(mu_);
  assert(i == taken_ && "VerifyAhead::Take must be called in order");
  cv_.wait(lock, [&] { return !ready_.empty(); });
  Decoded d = std::move(ready_.front());
  ready_.pop_front();
  ++taken_;
  lock.unlock();
  cv_.notify_all();
  if (d.failure) std::rethrow_exception(d.failure);
  *id = d.id;
  *stored = std::move(d.stored);
  return std::move(d.content);
}

}  // namespace aidsync
