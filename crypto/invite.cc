#include "crypto/invite.h"

#include <sodium.h>

#include "schema/canonical.h"
#include "schema/certificate.capnp.h"

namespace aidsync {

InviteSecret::InviteSecret(InviteSecret&& other) noexcept : bytes(other.bytes) {
  sodium_memzero(other.bytes.data(), other.bytes.size());
}

InviteSecret& InviteSecret::operator=(InviteSecret&& other) noexcept {
  if (this != &other) {
    bytes = other.bytes;
    sodium_memzero(other.bytes.data(), other.bytes.size());
  }
  return *this;
}

InviteSecret::~InviteSecret() { sodium_memzero(bytes.data(), bytes.size()); }

std::string EncodeInviteToken(const InviteToken& token) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::InviteToken>();
  root.setAddress(token.address);
  root.setHubKey(DataOf(token.hub_key.view()));
  root.setAuthority(DataOf(token.authority.view()));
  root.setSecret(DataOf(token.secret.view()));
  root.setExpiresAtMs(token.expires_at_ms);
  std::string raw = SerializeCanonical(root.asReader());
  std::string b64(sodium_base64_ENCODED_LEN(raw.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(raw.data()), raw.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw.data(), raw.size());
  b64.resize(b64.size() - 1);  // the encoder's terminating NUL
  return kInviteTokenPrefix + b64;
}

namespace {

Result<PublicKey> Key32(capnp::Data::Reader data, const char* what) {
  if (data.size() != kPublicKeyBytes) return Status::InvalidArgument(std::string("the token's ") + what + " is damaged");
  return PublicKey::FromBytes(DataView(data));
}

}  // namespace

Result<InviteToken> DecodeInviteToken(std::string_view text, const InviteTokenParseOptions& options) {
  const std::string_view prefix = kInviteTokenPrefix;
  if (text.size() > options.max_chars)
    return Status::InvalidArgument("not an invite token: " + std::to_string(text.size()) + " characters, over " +
                                   std::to_string(options.max_chars));
  if (text.substr(0, prefix.size()) != prefix)
    return Status::InvalidArgument("not an invite token (it should start with \"" + std::string(prefix) + "\")");
  std::string_view b64 = text.substr(prefix.size());
  std::string raw(b64.size(), '\0');
  size_t raw_len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), b64.data(), b64.size(), nullptr,
                        &raw_len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return Status::InvalidArgument("the invite token is damaged (not base64url); copy it again");
  raw.resize(raw_len);
  capnp::ReaderOptions reader;
  reader.traversalLimitInWords = options.traversal_limit_words;
  reader.nestingLimit = options.nesting_limit;
  auto message = CanonicalMessage::Parse(raw, reader, "invite token");
  sodium_memzero(raw.data(), raw.size());
  if (!message.ok()) return Status::InvalidArgument("the invite token is damaged; copy it again");
  try {
    auto root = (*message)->Root<wire::InviteToken>();
    InviteToken token;
    token.address = root.getAddress();
    ASSIGN_OR_RETURN(token.hub_key, Key32(root.getHubKey(), "hub key"));
    ASSIGN_OR_RETURN(token.authority, Key32(root.getAuthority(), "authority key"));
    if (root.getSecret().size() != token.secret.bytes.size())
      return Status::InvalidArgument("the token's secret is damaged");
    std::memcpy(token.secret.bytes.data(), root.getSecret().begin(), token.secret.bytes.size());
    token.expires_at_ms = root.getExpiresAtMs();
    if (token.address.rfind("tcp://", 0) != 0)
      return Status::InvalidArgument("the token's hub address is not tcp://HOST:PORT");
    return token;
  } catch (const kj::Exception& e) {
    return Status::InvalidArgument("the invite token is damaged; copy it again");
  }
}

Digest InviteId(const InviteSecret& secret) { return ComputeDigest("aidsync invite id", secret.view()); }

Digest JoinProofDigest(const InviteSecret& secret, const PublicKey& node_key) {
  std::string data(secret.view());
  data.append(node_key.view());
  Digest d = ComputeDigest("aidsync join v1", data);
  sodium_memzero(data.data(), data.size());
  return d;
}

}  // namespace aidsync
