// Node and authority identity keys: ed25519 (libsodium), hashing, and the
// Curve25519 keys derived from an identity for encryption.
//
// Messages are never signed directly. Each kind of signed object has a context
// string ("aidsync changeset v1", "aidsync certificate v1", ...); the signer
// signs Digest(context, bytes), so a signature made for one kind of object can
// never be replayed as another, and the digest doubles as the object's id.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/env.h"
#include "base/status.h"

namespace aidsync {

constexpr size_t kPublicKeyBytes = 32;
constexpr size_t kSignatureBytes = 64;
constexpr size_t kDigestBytes = 32;

using Signature = std::array<uint8_t, kSignatureBytes>;

// A 32-byte BLAKE2b-256 digest. Value type.
struct Digest {
  std::array<uint8_t, kDigestBytes> bytes{};
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  std::string Hex() const;
  // Parses exactly 32 raw bytes; InvalidArgument otherwise.
  static Result<Digest> FromBytes(std::string_view raw);
  auto operator<=>(const Digest&) const = default;
};

// BLAKE2b-256 over (context, 0x00, data). Thread-safe.
Digest ComputeDigest(std::string_view context, std::string_view data);

// An ed25519 public key. Value type.
struct PublicKey {
  std::array<uint8_t, kPublicKeyBytes> bytes{};
  std::string_view view() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  // 64 lowercase hex digits.
  std::string Hex() const;
  // Parses 64 hex digits (either case); InvalidArgument naming the problem otherwise.
  static Result<PublicKey> FromHex(std::string_view hex);
  // Parses exactly 32 raw bytes; InvalidArgument otherwise.
  static Result<PublicKey> FromBytes(std::string_view raw);
  auto operator<=>(const PublicKey&) const = default;
};

// OK if `key` can be a real signer's key: a canonical encoding of an
// ed25519 point on the curve and not of small order (libsodium's
// crypto_core_ed25519_is_valid_point). InvalidArgument otherwise: the
// all-zero key and other small-order points verify forged signatures or
// none, so a key given by hand (an authority, a node to enrol) is checked.
Status ValidatePublicKey(const PublicKey& key);

// Verifies an ed25519 signature over Digest(context, data). Thread-safe.
bool VerifyDigestSignature(const PublicKey& key, const Digest& digest, const Signature& sig);

// An ed25519 key pair whose secret half lives in sodium_malloc'd memory
// (guarded, locked, zeroed on destruction). Movable, not copyable.
// Thread-safe for concurrent Sign calls.
class SigningKey {
 public:
  // A fresh key pair whose seed comes from `random`.
  static SigningKey Generate(RandomSource& random);

  // Reads a key file written by Save. Fails with:
  //  NotFound if the file does not exist;
  //  Unauthorized if group or others may read or write it (mode & 077),
  //    naming the file and its mode: a readable key may already be copied;
  //  Corruption if the content is not a valid key file.
  static Result<SigningKey> Load(const std::string& path);

  // Writes the key to `path`, created with mode 0600 and O_EXCL (never
  // overwrites), fsynced. AlreadyExists if the file exists; IOError otherwise.
  Status Save(const std::string& path) const;

  const PublicKey& public_key() const { return public_key_; }

  // Signs Digest `digest` (already computed by the caller over its context).
  Signature SignDigest(const Digest& digest) const;

  // The Curve25519 (X25519) secret key derived from this identity, for
  // opening sealed bundles. Written into `out` (32 bytes); the caller must
  // sodium_memzero it after use.
  void DeriveCurveSecret(uint8_t out[32]) const;

  SigningKey(SigningKey&& other) noexcept;
  SigningKey& operator=(SigningKey&& other) noexcept;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

 private:
  SigningKey() = default;
  uint8_t* secret_ = nullptr;  // 64 bytes, sodium_malloc'd
  PublicKey public_key_;
};

// Derives the X25519 public key of an ed25519 identity. InvalidArgument if
// the ed25519 key is not a valid curve point.
Result<std::array<uint8_t, 32>> DeriveCurvePublic(const PublicKey& key);

// Hex helpers shared by all modules.
std::string ToHex(std::string_view bytes);
// Parses hex of any even length; InvalidArgument if it is not hex.
Result<std::string> FromHex(std::string_view hex);

}  // namespace aidsync
