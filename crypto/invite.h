// Invite tokens for network enrolment (DESIGN 6): `aidsync invite` on the hub
// prints one, `aidsync join TOKEN` on a new station uses it.
//
// A token is one word: "aidsync-invite-" followed by the base64url (no
// padding) of a canonical Cap'n Proto InviteToken (schema/certificate.capnp).
// It carries the hub's address and key (so the joiner can open a CurveZMQ
// connection to the real hub and nobody else), the authority key, a 32-byte
// secret and the expiry. The hub keeps only InviteId(secret), so a copy of
// the hub's database does not reveal live tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "crypto/keys.h"

namespace aidsync {

constexpr char kInviteTokenPrefix[] = "aidsync-invite-";

// The token's secret. Zeroed on destruction; not copyable.
struct InviteSecret {
  std::array<uint8_t, 32> bytes{};
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  InviteSecret() = default;
  InviteSecret(InviteSecret&& other) noexcept;
  InviteSecret& operator=(InviteSecret&& other) noexcept;
  InviteSecret(const InviteSecret&) = delete;
  InviteSecret& operator=(const InviteSecret&) = delete;
  ~InviteSecret();
};

struct InviteToken {
  std::string address;  // tcp://HOST:PORT
  PublicKey hub_key;
  PublicKey authority;
  InviteSecret secret;
  int64_t expires_at_ms = 0;
};

// Limits applied when parsing a token someone pasted.
struct InviteTokenParseOptions {
  // Stops a pasted file (or an attack through a script) from being decoded
  // and parsed at any size: a real token is under 400 characters.
  size_t max_chars = 1024;
  // Stops Cap'n Proto amplification (pointer loops, deep nesting).
  uint64_t traversal_limit_words = 256;
  int nesting_limit = 4;
};

// Formats a token. Never log the result: it is a credential until it expires.
std::string EncodeInviteToken(const InviteToken& token);

// Parses a token. InvalidArgument naming the problem (not a token, damaged,
// over a limit); it does not check expiry (the hub does, on its own clock).
Result<InviteToken> DecodeInviteToken(std::string_view text, const InviteTokenParseOptions& options = {});

// What the hub stores and looks an invite up by.
Digest InviteId(const InviteSecret& secret);

// What `join` signs with the new node's key, proving it holds both the
// secret and the key the certificate will name: Digest("aidsync join v1",
// secret || node key).
Digest JoinProofDigest(const InviteSecret& secret, const PublicKey& node_key);

}  // namespace aidsync
