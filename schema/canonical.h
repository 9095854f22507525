// Cap'n Proto canonical form for everything aidsync signs, stores or sends.
//
// Signed and hashed bytes must not depend on which Cap'n Proto version or
// allocation strategy wrote them, and bytes a signature does not cover
// (segment tables, pointers, padding) must have only one valid form, or a
// flipped bit could go unnoticed. So every aidsync message is one segment in
// canonical form (the Cap'n Proto spec's "Canonicalization"), preceded by the
// standard one-segment table, and readers refuse anything else.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace aidsync {

// Views of Cap'n Proto Data as bytes and back; neither copies.
inline std::string_view DataView(capnp::Data::Reader data) {
  return {reinterpret_cast<const char*>(data.begin()), data.size()};
}
inline capnp::Data::Reader DataOf(std::string_view bytes) {
  return {reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size()};
}

// Serializes a struct reader canonically as a flat one-segment message.
template <typename StructReader>
std::string SerializeCanonical(StructReader root) {
  kj::Array<capnp::word> words = capnp::canonicalize(root);
  const uint32_t table[2] = {0, static_cast<uint32_t>(words.size())};  // segment count - 1, size in words
  std::string out(sizeof table + words.size() * sizeof(capnp::word), '\0');
  std::memcpy(out.data(), table, sizeof table);
  std::memcpy(out.data() + sizeof table, words.begin(), words.size() * sizeof(capnp::word));
  return out;
}

// A parsed canonical message over its own aligned copy of untrusted bytes.
class CanonicalMessage {
 public:
  // Copies `bytes` into aligned memory and checks it is exactly one
  // canonical message (no trailing bytes). Corruption naming `what` otherwise.
  // `options` bound traversal and nesting (amplification, stack exhaustion).
  static Result<std::unique_ptr<CanonicalMessage>> Parse(std::string_view bytes,
                                                         const capnp::ReaderOptions& options,
                                                         const char* what);

  // The root struct. Accessors may throw kj::Exception on malformed content
  // within the limits; callers catch it and report Corruption.
  template <typename T>
  typename T::Reader Root() {
    return reader_->getRoot<T>();
  }

  CanonicalMessage(const CanonicalMessage&) = delete;
  CanonicalMessage& operator=(const CanonicalMessage&) = delete;

 private:
  CanonicalMessage() = default;
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

}  // namespace aidsync
