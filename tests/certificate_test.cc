// Tests for crypto/certificate.h: issuing, parsing and tamper detection.
#include "crypto/certificate.h"

#include <catch2/catch.hpp>
#include <string>

#include "base/env.h"
#include "crypto/keys.h"
#include "tests/test_support.h"

namespace aidsync {
namespace {

using testing::SeededRandom;

CertificateFields StationFields(const PublicKey& node_key) {
  CertificateFields fields;
  fields.node_key = node_key;
  fields.name = "城关镇工作站";
  fields.code = "0512";
  fields.role = Role::kStation;
  fields.scope = "430123/05";
  fields.issued_at_ms = 1700000000123;
  return fields;
}

struct Keys {
  SeededRandom random{11};
  SigningKey authority = SigningKey::Generate(random);
  SigningKey node = SigningKey::Generate(random);
};

}  // namespace

TEST_CASE("certificate issue/parse round trip", "[certificate]") {
  Keys keys;
  CertificateFields fields = StationFields(keys.node.public_key());
  fields.authority = keys.node.public_key();  // ignored by Issue
  auto cert = Certificate::Issue(fields, keys.authority);
  REQUIRE(cert.ok());
  CHECK(cert->fields().authority == keys.authority.public_key());
  CHECK(cert->bytes().size() % 8 == 0);

  auto parsed = Certificate::Parse(cert->bytes(), keys.authority.public_key());
  REQUIRE(parsed.ok());
  const CertificateFields& got = parsed->fields();
  CHECK(got.node_key == keys.node.public_key());
  CHECK(got.name == fields.name);
  CHECK(got.code == fields.code);
  CHECK(got.role == Role::kStation);
  CHECK(got.scope == fields.scope);
  CHECK(got.issued_at_ms == fields.issued_at_ms);
  CHECK(got.authority == keys.authority.public_key());
  CHECK(parsed->bytes() == cert->bytes());

  CertificateFields hub = StationFields(keys.node.public_key());
  hub.role = Role::kHub;
  hub.scope = "430123";
  hub.issued_at_ms = 0;
  auto hub_cert = Certificate::Issue(hub, keys.authority);
  REQUIRE(hub_cert.ok());
  auto hub_parsed = Certificate::Parse(hub_cert->bytes(), keys.authority.public_key());
  REQUIRE(hub_parsed.ok());
  CHECK(hub_parsed->fields().role == Role::kHub);
  CHECK(std::string(RoleName(Role::kHub)) == "hub");
  CHECK(std::string(RoleName(Role::kStation)) == "station");
}

TEST_CASE("certificate from another authority is Unauthorized", "[certificate]") {
  Keys keys;
  SeededRandom random(99);
  SigningKey rogue = SigningKey::Generate(random);
  auto cert = Certificate::Issue(StationFields(keys.node.public_key()), rogue);
  REQUIRE(cert.ok());
  auto parsed = Certificate::Parse(cert->bytes(), keys.authority.public_key());
  CHECK(parsed.status().code() == Status::Code::kUnauthorized);
}

TEST_CASE("flipping any byte of a certificate makes Parse fail", "[certificate]") {
  Keys keys;
  auto cert = Certificate::Issue(StationFields(keys.node.public_key()), keys.authority);
  REQUIRE(cert.ok());
  const std::string& good = cert->bytes();
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      auto parsed = Certificate::Parse(bad, keys.authority.public_key());
      INFO("byte " << i << " of " << good.size() << ", mask " << int(mask));
      CHECK_FALSE(parsed.ok());
    }
  }
}

TEST_CASE("truncated, extended and oversized certificates are rejected", "[certificate]") {
  Keys keys;
  auto cert = Certificate::Issue(StationFields(keys.node.public_key()), keys.authority);
  REQUIRE(cert.ok());
  const std::string& good = cert->bytes();
  const PublicKey& authority = keys.authority.public_key();

  for (size_t len = 0; len < good.size(); ++len) {
    INFO("truncated to " << len);
    CHECK(Certificate::Parse(good.substr(0, len), authority).status().code() ==
          Status::Code::kCorruption);
  }
  CHECK(Certificate::Parse(good + std::string(8, '\0'), authority).status().code() ==
        Status::Code::kCorruption);

  std::string huge(5000, '\0');
  auto parsed = Certificate::Parse(huge, authority);
  CHECK(parsed.status().code() == Status::Code::kCorruption);
  CHECK(parsed.status().message().find("limit") != std::string::npos);

  CertificateParseOptions tight;
  tight.max_bytes = good.size() - 1;
  CHECK(Certificate::Parse(good, authority, tight).status().code() == Status::Code::kCorruption);
  CertificateParseOptions few_words;
  few_words.traversal_limit_words = 4;
  CHECK(Certificate::Parse(good, authority, few_words).status().code() ==
        Status::Code::kCorruption);
}

TEST_CASE("Issue refuses invalid fields", "[certificate]") {
  Keys keys;
  auto issue = [&](auto mutate) {
    CertificateFields fields = StationFields(keys.node.public_key());
    mutate(fields);
    return Certificate::Issue(fields, keys.authority).status().code();
  };
  using Code = Status::Code;
  CHECK(issue([](CertificateFields& f) { f.scope = ""; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.scope = "430123//05"; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.scope = "430123/05/"; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.scope = "430 123"; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.code = ""; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.code = "05/12"; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.name = ""; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.name = std::string(201, 'a'); }) ==
        Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.name = "bad\nname"; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.node_key = PublicKey{}; }) == Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.role = static_cast<Role>(7); }) ==
        Code::kInvalidArgument);
  CHECK(issue([](CertificateFields& f) { f.name = std::string(200, 'a'); }) == Code::kOk);
}

}  // namespace aidsync
