// VerifyAhead: checks the changesets of a received batch on a second thread
// while the caller applies them in order (docs/PERFORMANCE.md).
//
// Decoding a changeset (size and structure checks, the canonical form, the
// BLAKE2b id and the ed25519 signature, the conversion to ChangesetContent)
// touches no database and was about 45% of applying a sync batch. Done on a
// worker thread one or more changesets ahead of the SQLite work, it costs
// nothing on the applying thread when a second core is free, and the same
// as before when none is. The results are exactly DecodeChangeset's, taken
// in order, so what is applied does not change.
//
// Thread-safety: one thread (the one applying) calls Take; the worker is
// private. Memory is bounded by the look-ahead window, not the batch size.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "sync/changeset.h"
#include "sync/packing.h"

namespace aidsync {

class VerifyAhead {
 public:
  // Starts decoding envelopes[0], envelopes[1], ... on a worker thread, at
  // most `window` ahead of the caller. A batch of one is decoded by Take on
  // the caller's thread (a thread would cost more than it saves).
  // `envelopes` is borrowed: it must outlive this object, unchanged.
  explicit VerifyAhead(const std::vector<std::string>& envelopes, size_t window = 16,
                       const ChangesetLimits& limits = {});
  // Stops the worker after the changeset it is decoding, and joins it.
  ~VerifyAhead();
  VerifyAhead(const VerifyAhead&) = delete;
  VerifyAhead& operator=(const VerifyAhead&) = delete;

  // What DecodeChangeset(envelopes[i], id) returns. Must be called for
  // i = 0, 1, 2, ... in order, each once; waits for the worker if needed.
  // When the worker decoded it, *stored is the log's form of envelopes[i]
  // (the log's form, made off the applying thread); else it is left empty.
  Result<ChangesetContent> Take(size_t i, Digest* id, std::string* stored);

 private:
  struct Decoded {
    Digest id;
    Result<ChangesetContent> content;
    std::string stored;  // empty unless content is ok
    std::exception_ptr failure;  // what decoding threw, for Take to rethrow
  };
  void Run();

  const std::vector<std::string>& envelopes_;
  Packer packer_{kStoredEnvelopeLevel};  // the worker's own: the caller's thread packs too (held changesets)
  const size_t window_;
  const ChangesetLimits limits_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Decoded> ready_;  // decoded, not yet taken; ready_.front() is envelopes_[taken_]
  size_t taken_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace aidsync
