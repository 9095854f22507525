// The outer shape shared by every authority-signed object (certificates,
// revocations): a struct { body :Data; signature :Data } whose signature is
// ed25519 over Digest(context, body). Internal to crypto/.
#pragma once

#include <cstring>
#include <string>

#include "base/status.h"
#include "crypto/keys.h"
#include "schema/canonical.h"

namespace aidsync::signed_body {

struct Parts {
  std::string body;
  Signature signature{};
};

// Serializes Signed{body, signature} canonically.
template <typename SignedT>
std::string Build(std::string_view body, const Signature& sig) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<SignedT>();
  root.setBody(DataOf(body));
  root.setSignature(capnp::Data::Reader(sig.data(), sig.size()));
  return SerializeCanonical(root.asReader());
}

// Reads the outer struct. It is not covered by the signature, so it must be
// canonical and fill the buffer exactly: otherwise padding or trailing bytes
// could change without any check noticing. Corruption naming `what` otherwise.
template <typename SignedT>
Result<Parts> Read(std::string_view bytes, const capnp::ReaderOptions& options, const char* what) {
  ASSIGN_OR_RETURN(auto message, CanonicalMessage::Parse(bytes, options, what));
  auto root = message->template Root<SignedT>();
  if (root.getSignature().size() != kSignatureBytes)
    return Status::Corruption(std::string(what) + " signature is " + std::to_string(root.getSignature().size()) +
                              " bytes, not 64");
  Parts parts;
  parts.body = std::string(DataView(root.getBody()));
  std::memcpy(parts.signature.data(), root.getSignature().begin(), kSignatureBytes);
  return parts;
}

// Cap'n Proto reader limits from a parse-options struct that has
// traversal_limit_words and nesting_limit (CertificateParseOptions,
// RevocationParseOptions).
template <typename ParseOptions>
capnp::ReaderOptions ReaderOptionsOf(const ParseOptions& options) {
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options.traversal_limit_words;
  reader.nestingLimit = options.nesting_limit;
  return reader;
}

// A 32-byte key field; Corruption naming `what` otherwise.
inline Result<PublicKey> ReadKey(capnp::Data::Reader data, const char* what) {
  if (data.size() != kPublicKeyBytes)
    return Status::Corruption(std::string(what) + " is " + std::to_string(data.size()) + " bytes, not 32");
  return PublicKey::FromBytes(DataView(data));
}

}  // namespace aidsync::signed_body
