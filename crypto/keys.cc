// Identity keys, digests and hex helpers (libsodium).
//
// Key file format: a text file holding exactly one line,
//
//   "aidsync-ed25519-secret-v1 " <128 lowercase hex digits> "\n"
//
// where the hex digits are libsodium's 64-byte ed25519 secret key (32-byte
// seed followed by the 32-byte public key). The file is created with mode 0600
// and never overwritten; Load refuses it if group or others have any access.
#include "crypto/keys.h"

#include "base/durable_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace aidsync {
namespace {

constexpr size_t kSecretKeyBytes = crypto_sign_SECRETKEYBYTES;
constexpr size_t kSeedBytes = crypto_sign_SEEDBYTES;
constexpr char kKeyFilePrefix[] = "aidsync-ed25519-secret-v1 ";
constexpr size_t kKeyFilePrefixLen = sizeof(kKeyFilePrefix) - 1;
// Prefix, hex secret and the trailing newline.
constexpr size_t kKeyFileBytes = kKeyFilePrefixLen + 2 * kSecretKeyBytes + 1;

static_assert(kSecretKeyBytes == 64 && kSeedBytes == 32);
static_assert(crypto_sign_PUBLICKEYBYTES == kPublicKeyBytes);
static_assert(crypto_sign_BYTES == kSignatureBytes);
static_assert(crypto_generichash_BYTES == kDigestBytes);

// sodium_init is idempotent and thread-safe, but running it once keeps the
// cost off every call; a failure means no secure RNG, so nothing can be safe.
void EnsureSodium() {
  static const bool initialized = [] {
    if (sodium_init() < 0) {
      std::fputs("aidsync: libsodium failed to initialize\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)initialized;
}

uint8_t* AllocateSecret() {
  EnsureSodium();
  auto* secret = static_cast<uint8_t*>(sodium_malloc(kSecretKeyBytes));
  if (secret == nullptr) throw std::bad_alloc();
  return secret;
}

std::string ErrnoText(int err) { return std::strerror(err); }

// Writes all of buf, retrying short writes and EINTR.
bool WriteAll(int fd, const char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buf += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

// Reads up to len bytes, stopping early only at end of file. -1 on error.
ssize_t ReadUpTo(int fd, char* buf, size_t len) {
  size_t total = 0;
  while (total < len) {
    ssize_t n = ::read(fd, buf + total, len - total);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(total);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The stored secret must be the key pair its own seed produces; otherwise the
// file was edited or damaged and signatures would not match the public key.
bool SecretIsConsistent(const uint8_t* secret) {
  uint8_t seed[kSeedBytes];
  uint8_t embedded_pk[kPublicKeyBytes];
  uint8_t derived_pk[kPublicKeyBytes];
  uint8_t derived_sk[kSecretKeyBytes];
  crypto_sign_ed25519_sk_to_seed(seed, secret);
  crypto_sign_ed25519_sk_to_pk(embedded_pk, secret);
  crypto_sign_seed_keypair(derived_pk, derived_sk, seed);
  bool same = sodium_memcmp(embedded_pk, derived_pk, kPublicKeyBytes) == 0;
  sodium_memzero(seed, sizeof(seed));
  sodium_memzero(derived_sk, sizeof(derived_sk));
  return same;
}

// Decodes the key file content into `secret` (64 bytes). Corruption on any
// deviation from the format.
Status DecodeKeyFile(const std::string& path, const char* content, size_t size, uint8_t* secret) {
  Status bad =
      Status::Corruption("key file " + path + " is not an aidsync key file (expected one line: '" +
                         std::string(kKeyFilePrefix) + "' and 128 hex digits)");
  if (size != kKeyFileBytes || std::memcmp(content, kKeyFilePrefix, kKeyFilePrefixLen) != 0 ||
      content[size - 1] != '\n') {
    return bad;
  }
  size_t bin_len = 0;
  if (sodium_hex2bin(secret, kSecretKeyBytes, content + kKeyFilePrefixLen, 2 * kSecretKeyBytes,
                     nullptr, &bin_len, nullptr) != 0 ||
      bin_len != kSecretKeyBytes) {
    return bad;
  }
  if (!SecretIsConsistent(secret)) {
    return Status::Corruption("key file " + path +
                              " is damaged: its public key does not match its secret key");
  }
  return Status::OK();
}

}  // namespace

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

Result<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) {
    return Status::InvalidArgument("hex string has an odd number of digits (" +
                                   std::to_string(hex.size()) + ")");
  }
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexValue(hex[i]);
    int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      size_t bad = hi < 0 ? i : i + 1;
      return Status::InvalidArgument("'" + std::string(1, hex[bad]) + "' at position " +
                                     std::to_string(bad) + " is not a hex digit");
    }
    out[i / 2] = static_cast<char>(hi << 4 | lo);
  }
  return out;
}

std::string Digest::Hex() const { return ToHex(view()); }

Result<Digest> Digest::FromBytes(std::string_view raw) {
  if (raw.size() != kDigestBytes) {
    return Status::InvalidArgument("a digest is 32 bytes, got " + std::to_string(raw.size()));
  }
  Digest digest;
  std::memcpy(digest.bytes.data(), raw.data(), kDigestBytes);
  return digest;
}

Digest ComputeDigest(std::string_view context, std::string_view data) {
  EnsureSodium();
  static constexpr uint8_t kSeparator = 0x00;
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kDigestBytes);
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(context.data()),
                            context.size());
  crypto_generichash_update(&state, &kSeparator, 1);
  crypto_generichash_update(&state, reinterpret_cast<const uint8_t*>(data.data()), data.size());
  Digest digest;
  crypto_generichash_final(&state, digest.bytes.data(), kDigestBytes);
  return digest;
}

std::string PublicKey::Hex() const { return ToHex(view()); }

Result<PublicKey> PublicKey::FromHex(std::string_view hex) {
  if (hex.size() != 2 * kPublicKeyBytes) {
    return Status::InvalidArgument("a public key is 64 hex digits, got " +
                                   std::to_string(hex.size()) + " characters");
  }
  auto raw = aidsync::FromHex(hex);
  if (!raw.ok()) return raw.status().WithContext("public key");
  return FromBytes(*raw);
}

Result<PublicKey> PublicKey::FromBytes(std::string_view raw) {
  if (raw.size() != kPublicKeyBytes) {
    return Status::InvalidArgument("a public key is 32 bytes, got " + std::to_string(raw.size()));
  }
  PublicKey key;
  std::memcpy(key.bytes.data(), raw.data(), kPublicKeyBytes);
  return key;
}

Status ValidatePublicKey(const PublicKey& key) {
  EnsureSodium();
  if (crypto_core_ed25519_is_valid_point(key.bytes.data()) != 1)
    return Status::InvalidArgument("public key " + key.Hex() +
                                   " is not a valid ed25519 key (all zero, of small order, or not on the curve)");
  return Status::OK();
}

bool VerifyDigestSignature(const PublicKey& key, const Digest& digest, const Signature& sig) {
  EnsureSodium();
  return crypto_sign_verify_detached(sig.data(), digest.bytes.data(), kDigestBytes,
                                     key.bytes.data()) == 0;
}

Result<std::array<uint8_t, 32>> DeriveCurvePublic(const PublicKey& key) {
  EnsureSodium();
  std::array<uint8_t, 32> curve{};
  if (crypto_sign_ed25519_pk_to_curve25519(curve.data(), key.bytes.data()) != 0) {
    return Status::InvalidArgument("public key " + key.Hex() + " is not a valid ed25519 key");
  }
  return curve;
}

SigningKey SigningKey::Generate(RandomSource& random) {
  SigningKey key;
  key.secret_ = AllocateSecret();
  uint8_t seed[kSeedBytes];
  random.Fill(seed, sizeof(seed));
  crypto_sign_seed_keypair(key.public_key_.bytes.data(), key.secret_, seed);
  sodium_memzero(seed, sizeof(seed));
  return key;
}

Result<SigningKey> SigningKey::Load(const std::string& path) {
  // Open first and fstat the open file, so the mode we check is the mode of
  // the file we read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound("key file " + path + " does not exist");
    return Status::IOError("cannot open key file " + path + ": " + ErrnoText(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError("cannot stat key file " + path + ": " + ErrnoText(err));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::Unauthorized("key file " + path + " has mode " + mode +
                                " so other users may have copied it; run 'chmod 600 " + path +
                                "' if you are sure it is still secret");
  }
  // One byte more than a valid file, so an over-long file is detected.
  char content[kKeyFileBytes + 1];
  ssize_t n = ReadUpTo(fd, content, sizeof(content));
  int err = errno;
  ::close(fd);
  if (n < 0) {
    sodium_memzero(content, sizeof(content));
    return Status::IOError("cannot read key file " + path + ": " + ErrnoText(err));
  }
  SigningKey key;
  key.secret_ = AllocateSecret();
  Status decoded = DecodeKeyFile(path, content, static_cast<size_t>(n), key.secret_);
  sodium_memzero(content, sizeof(content));
  if (!decoded.ok()) return decoded;
  crypto_sign_ed25519_sk_to_pk(key.public_key_.bytes.data(), key.secret_);
  return key;
}

Status SigningKey::Save(const std::string& path) const {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return Status::AlreadyExists("key file " + path + " already exists; it is never overwritten");
    }
    return Status::IOError("cannot create key file " + path + ": " + ErrnoText(err));
  }
  char content[kKeyFileBytes + 1];  // sodium_bin2hex also writes a NUL
  std::memcpy(content, kKeyFilePrefix, kKeyFilePrefixLen);
  sodium_bin2hex(content + kKeyFilePrefixLen, 2 * kSecretKeyBytes + 1, secret_, kSecretKeyBytes);
  content[kKeyFileBytes - 1] = '\n';
  bool ok = WriteAll(fd, content, kKeyFileBytes);
  int err = errno;
  sodium_memzero(content, sizeof(content));
  if (ok && ::fsync(fd) != 0) {
    ok = false;
    err = errno;
  }
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    // A partial key file would only fail later, far from the cause.
    ::unlink(path.c_str());
    return Status::IOError("cannot write key file " + path + ": " + ErrnoText(err));
  }
  return SyncParentDirectory(path);
}

Signature SigningKey::SignDigest(const Digest& digest) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, digest.bytes.data(), kDigestBytes, secret_);
  return sig;
}

void SigningKey::DeriveCurveSecret(uint8_t out[32]) const {
  crypto_sign_ed25519_sk_to_curve25519(out, secret_);
}

SigningKey::SigningKey(SigningKey&& other) noexcept
    : secret_(std::exchange(other.secret_, nullptr)), public_key_(other.public_key_) {}

SigningKey& SigningKey::operator=(SigningKey&& other) noexcept {
  if (this != &other) {
    if (secret_ != nullptr) sodium_free(secret_);
    secret_ = std::exchange(other.secret_, nullptr);
    public_key_ = other.public_key_;
  }
  return *this;
}

SigningKey::~SigningKey() {
  // sodium_free zeroes the memory before releasing it.
  if (secret_ != nullptr) sodium_free(secret_);
}

}  // namespace aidsync
