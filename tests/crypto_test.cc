// Tests for crypto/keys.h: digests, signatures, hex, key files.
#include <sodium.h>
#include <sys/stat.h>

#include <array>
#include <catch2/catch.hpp>
#include <cctype>
#include <string>

#include "base/env.h"
#include "crypto/keys.h"
#include "tests/test_support.h"

namespace aidsync {
namespace {

using testing::ReadFile;
using testing::SeededRandom;
using testing::TempDir;

// Writes `content` to `path` and gives the file `mode`.
void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  testing::WriteFile(path, content);
  REQUIRE(chmod(path.c_str(), mode) == 0);
}

}  // namespace

TEST_CASE("digest is deterministic and separated by context", "[crypto][digest]") {
  Digest a = ComputeDigest("aidsync changeset v1", "payload");
  CHECK(a == ComputeDigest("aidsync changeset v1", "payload"));
  CHECK(a != ComputeDigest("aidsync certificate v1", "payload"));
  CHECK(a != ComputeDigest("aidsync changeset v1", "payload!"));
  // The 0x00 separator keeps (context, data) pairs from sliding into each other.
  CHECK(ComputeDigest("ab", "c") != ComputeDigest("a", "bc"));
  CHECK(a.Hex().size() == 64);
  // BLAKE2b-256 of "" || 0x00 || "": pins the construction itself.
  CHECK(ComputeDigest("", "").Hex() ==
        "03170a2e7597b7b7e3d84c05391d139a62b157e78786d8c082f29dcf4c111314");

  auto round = Digest::FromBytes(a.view());
  REQUIRE(round.ok());
  CHECK(*round == a);
  CHECK(Digest::FromBytes("short").status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("signatures verify and a flipped bit fails", "[crypto][sign]") {
  SeededRandom random(1);
  SigningKey key = SigningKey::Generate(random);
  SigningKey other = SigningKey::Generate(random);
  CHECK(key.public_key() != other.public_key());

  Digest digest = ComputeDigest("aidsync test v1", "hello");
  Signature sig = key.SignDigest(digest);
  CHECK(VerifyDigestSignature(key.public_key(), digest, sig));
  CHECK_FALSE(VerifyDigestSignature(other.public_key(), digest, sig));
  CHECK_FALSE(
      VerifyDigestSignature(key.public_key(), ComputeDigest("aidsync test v1", "hellO"), sig));

  for (size_t i = 0; i < sig.size(); ++i) {
    Signature bad = sig;
    bad[i] ^= 0x01;
    CHECK_FALSE(VerifyDigestSignature(key.public_key(), digest, bad));
  }
  Digest bad_digest = digest;
  bad_digest.bytes[7] ^= 0x80;
  CHECK_FALSE(VerifyDigestSignature(key.public_key(), bad_digest, sig));
}

TEST_CASE("the same seed gives the same key, and moves keep the key", "[crypto][sign]") {
  SeededRandom r1(42), r2(42);
  SigningKey a = SigningKey::Generate(r1);
  SigningKey b = SigningKey::Generate(r2);
  CHECK(a.public_key() == b.public_key());

  PublicKey pk = a.public_key();
  SigningKey moved(std::move(a));
  CHECK(moved.public_key() == pk);
  SystemRandom system;
  SigningKey c = SigningKey::Generate(system);
  c = std::move(moved);
  CHECK(c.public_key() == pk);
  Digest d = ComputeDigest("ctx", "x");
  CHECK(VerifyDigestSignature(pk, d, c.SignDigest(d)));
}

TEST_CASE("curve keys derived from an identity match", "[crypto][curve]") {
  SystemRandom random;
  SigningKey key = SigningKey::Generate(random);
  auto curve_public = DeriveCurvePublic(key.public_key());
  REQUIRE(curve_public.ok());
  uint8_t secret[32];
  key.DeriveCurveSecret(secret);
  std::array<uint8_t, 32> from_secret{};
  REQUIRE(crypto_scalarmult_base(from_secret.data(), secret) == 0);
  sodium_memzero(secret, sizeof(secret));
  CHECK(from_secret == *curve_public);
}

TEST_CASE("hex round-trips and rejects bad input", "[crypto][hex]") {
  std::string raw("\x00\x01\x7f\x80\xfe\xff", 6);
  CHECK(ToHex(raw) == "00017f80feff");
  auto back = FromHex("00017F80FEff");
  REQUIRE(back.ok());
  CHECK(*back == raw);
  CHECK(FromHex("").ok());

  CHECK(FromHex("abc").status().code() == Status::Code::kInvalidArgument);
  auto bad = FromHex("00zz");
  CHECK(bad.status().code() == Status::Code::kInvalidArgument);
  CHECK(bad.status().message().find("position 2") != std::string::npos);

  SeededRandom random(7);
  PublicKey pk = SigningKey::Generate(random).public_key();
  auto parsed = PublicKey::FromHex(pk.Hex());
  REQUIRE(parsed.ok());
  CHECK(*parsed == pk);
  std::string upper = pk.Hex();
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(PublicKey::FromHex(upper).ok());
  CHECK(PublicKey::FromHex(pk.Hex().substr(2)).status().code() == Status::Code::kInvalidArgument);
  std::string not_hex = pk.Hex();
  not_hex[10] = 'g';
  CHECK(PublicKey::FromHex(not_hex).status().code() == Status::Code::kInvalidArgument);
  CHECK(PublicKey::FromBytes("too short").status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("key file save/load round-trip", "[crypto][keyfile]") {
  TempDir dir;
  SeededRandom random(3);
  SigningKey key = SigningKey::Generate(random);
  std::string path = dir.File("node.key");
  REQUIRE(key.Save(path).ok());

  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::string content = ReadFile(path);
  CHECK(content.rfind("aidsync-ed25519-secret-v1 ", 0) == 0);
  CHECK(content.size() == 26 + 128 + 1);
  CHECK(content.back() == '\n');

  auto loaded = SigningKey::Load(path);
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key() == key.public_key());
  Digest d = ComputeDigest("ctx", "data");
  CHECK(VerifyDigestSignature(key.public_key(), d, loaded->SignDigest(d)));
}

TEST_CASE("Save refuses to overwrite an existing file", "[crypto][keyfile]") {
  TempDir dir;
  SystemRandom random;
  std::string path = dir.File("node.key");
  SigningKey first = SigningKey::Generate(random);
  REQUIRE(first.Save(path).ok());
  std::string before = ReadFile(path);

  Status st = SigningKey::Generate(random).Save(path);
  CHECK(st.code() == Status::Code::kAlreadyExists);
  CHECK(ReadFile(path) == before);
  CHECK(SigningKey::Generate(random).Save(dir.File("no/such/dir")).code() ==
        Status::Code::kIOError);
}

TEST_CASE("Load refuses a key file others may read", "[crypto][keyfile]") {
  TempDir dir;
  SystemRandom random;
  std::string path = dir.File("node.key");
  REQUIRE(SigningKey::Generate(random).Save(path).ok());
  REQUIRE(chmod(path.c_str(), 0644) == 0);
  auto loaded = SigningKey::Load(path);
  CHECK(loaded.status().code() == Status::Code::kUnauthorized);
  CHECK(loaded.status().message().find(path) != std::string::npos);
  CHECK(loaded.status().message().find("0644") != std::string::npos);

  REQUIRE(chmod(path.c_str(), 0620) == 0);
  CHECK(SigningKey::Load(path).status().code() == Status::Code::kUnauthorized);
  REQUIRE(chmod(path.c_str(), 0400) == 0);
  CHECK(SigningKey::Load(path).ok());
}

TEST_CASE("Load of a damaged key file is Corruption", "[crypto][keyfile]") {
  TempDir dir;
  std::string path = dir.File("bad.key");
  SeededRandom random(9);
  SigningKey key = SigningKey::Generate(random);
  REQUIRE(key.Save(dir.File("good.key")).ok());
  const std::string good = ReadFile(dir.File("good.key"));

  std::string flipped_pk = good;
  flipped_pk[26 + 127] = flipped_pk[26 + 127] == '0' ? '1' : '0';  // last hex digit of the pk

  const std::string cases[] = {
      "",
      "garbage\n",
      std::string(155, 'x'),
      good.substr(0, good.size() - 1),  // no newline
      good + "\n",                      // trailing junk
      "aidsync-ed25519-secret-v2 " + good.substr(26),
      good.substr(0, 30) + "zz" + good.substr(32),  // not hex
      flipped_pk,                                   // public half does not match the seed
  };
  for (const std::string& content : cases) {
    WriteFile(path, content, 0600);
    auto loaded = SigningKey::Load(path);
    INFO("content: " << content);
    CHECK(loaded.status().code() == Status::Code::kCorruption);
  }
}

TEST_CASE("Load of a missing file is NotFound", "[crypto][keyfile]") {
  TempDir dir;
  auto loaded = SigningKey::Load(dir.File("absent.key"));
  CHECK(loaded.status().code() == Status::Code::kNotFound);
  CHECK(loaded.status().message().find("absent.key") != std::string::npos);
}

}  // namespace aidsync
