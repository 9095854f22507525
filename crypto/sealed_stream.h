// A stream of frames encrypted to one recipient's identity key, for bundles
// carried on USB sticks: a lost stick leaks nothing, a tampered or truncated
// one is detected.
//
// Format (docs/FORMATS.md): magic "AIDSEAL1", crypto_box_seal of a fresh
// 32-byte stream key to the recipient's X25519 key (derived from its ed25519
// identity), the crypto_secretstream_xchacha20poly1305 header, then frames of
// [u32 little-endian ciphertext length][ciphertext]; the last frame carries the
// FINAL tag, so truncation is an error, not a shorter stream.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/status.h"
#include "crypto/keys.h"

namespace aidsync {

// Writes a sealed stream to a FILE the caller owns and keeps open.
// Not thread-safe. Not copyable.
class SealedStreamWriter {
 public:
  // Starts a stream to `recipient`; writes the header. IOError on write failure,
  // InvalidArgument if the recipient key is not a valid curve point.
  static Result<std::unique_ptr<SealedStreamWriter>> Start(std::FILE* out, const PublicKey& recipient,
                                                           RandomSource& random);
  // Appends one frame (at most max_frame_bytes of plaintext). IOError on failure.
  Status Write(std::string_view frame);
  // Writes the FINAL frame (empty plaintext) and flushes. Must be called once.
  Status Finish();

  ~SealedStreamWriter();
  SealedStreamWriter(const SealedStreamWriter&) = delete;
  SealedStreamWriter& operator=(const SealedStreamWriter&) = delete;

  struct State;  // libsodium state, zeroed on destruction

 private:
  explicit SealedStreamWriter(std::FILE* out);
  std::FILE* out_;
  State* state_;
};

struct SealedStreamOptions {
  // Largest plaintext frame accepted: stops a forged length from making the
  // reader allocate gigabytes before authentication fails.
  size_t max_frame_bytes = 1 << 20;
};

// Reads a sealed stream from a FILE the caller owns. Not thread-safe.
class SealedStreamReader {
 public:
  // Reads the header and opens the stream key with `own`. Corruption if the
  // magic is wrong or the stream was not sealed to this key (the two cannot
  // be told apart, by design).
  static Result<std::unique_ptr<SealedStreamReader>> Open(std::FILE* in, const SigningKey& own,
                                                          const SealedStreamOptions& options = {});
  // The next frame, or nullopt after the FINAL frame. Corruption if a frame
  // fails authentication, exceeds the limit, the file ends before FINAL, or
  // anything follows FINAL.
  Result<std::optional<std::string>> Next();

  ~SealedStreamReader();
  SealedStreamReader(const SealedStreamReader&) = delete;
  SealedStreamReader& operator=(const SealedStreamReader&) = delete;

  struct State;

 private:
  SealedStreamReader(std::FILE* in, SealedStreamOptions options);
  std::FILE* in_;
  SealedStreamOptions options_;
  State* state_;
  bool finished_ = false;
};

}  // namespace aidsync
