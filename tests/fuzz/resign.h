// Re-signing fuzzed bodies (tests/fuzz): libFuzzer mutates the body of a
// signed object (a changeset, certificate or revocation) and the target signs
// the result again with a key the county trusts. A mutated body would
// otherwise never get past the signature check, and the code behind it — the
// field checks, apply, revocation take-back — would only ever see the seeds.
//
// The mutated bytes are read leniently (any segment layout, within traversal
// and nesting limits), copied into canonical form, optionally edited (to put
// the signer's key in the author field) and signed. What comes out is what a
// hostile holder of that key could send.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/keys.h"
#include "schema/canonical.h"

namespace aidsync::fuzz {

// The canonical form of `bytes` read as a message with root T, after
// `edit(root)`; nullopt if Cap'n Proto cannot read it at all.
template <typename T>
std::optional<std::string> CanonicalBody(std::string_view bytes,
                                         const std::function<void(typename T::Builder)>& edit = {}) {
  // Pad to whole words: a mutation that shortens the input by a byte still
  // reads as the message it nearly is.
  auto words = kj::heapArray<capnp::word>((bytes.size() + 7) / 8);
  std::memset(words.begin(), 0, words.size() * sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 64 * 1024;
  options.nestingLimit = 16;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    capnp::MallocMessageBuilder builder;
    builder.setRoot(reader.getRoot<T>());
    auto root = builder.getRoot<T>();
    if (edit) edit(root);
    return SerializeCanonical(root.asReader());
  } catch (const kj::Exception&) {
    return std::nullopt;
  }
}

// SignedT{body, signature} with the signature of `key` over Digest(context,
// body): the outer shape of every signed aidsync object (a SignedChangeset,
// SignedCertificate or SignedRevocation, whose fields are `body` and
// `signature`).
template <typename SignedT>
std::string SignBody(std::string_view body, std::string_view context, const SigningKey& key) {
  Signature sig = key.SignDigest(ComputeDigest(context, body));
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<SignedT>();
  root.setBody(DataOf(body));
  root.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
  return SerializeCanonical(root.asReader());
}

// The body of a signed object of our own making (for seeds; throws
// kj::Exception on bytes that are not a SignedT).
template <typename SignedT>
std::string BodyOf(std::string_view signed_bytes) {
  auto words = kj::heapArray<capnp::word>(signed_bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), signed_bytes.data(), words.size() * sizeof(capnp::word));
  capnp::FlatArrayMessageReader reader(words);
  return std::string(DataView(reader.getRoot<SignedT>().getBody()));
}

}  // namespace aidsync::fuzz
