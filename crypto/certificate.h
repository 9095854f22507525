// Node certificates: the county authority's signed statement that a node key
// belongs to a named station (or the hub) with a given station code, role and
// jurisdiction scope.
//
// Wire/disk format: a Cap'n Proto `SignedCertificate` (schema/certificate.capnp)
// holding the verbatim body bytes and the authority's signature over
// Digest("aidsync certificate v1", body). See docs/FORMATS.md.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "crypto/keys.h"

namespace aidsync {

enum class Role : uint8_t { kHub = 0, kStation = 1 };
const char* RoleName(Role role);  // "hub" / "station"

struct CertificateFields {
  PublicKey node_key;
  std::string name;   // human name of the station, e.g. "城关镇工作站"
  std::string code;   // station code, unique in the county, e.g. "0512"
  Role role = Role::kStation;
  std::string scope;  // jurisdiction path, e.g. "430123/05"
  int64_t issued_at_ms = 0;
  PublicKey authority;  // the key that signed it
};

// Limits applied when parsing a certificate from untrusted bytes.
struct CertificateParseOptions {
  // Stops memory exhaustion from a huge blob claiming to be a certificate.
  size_t max_bytes = 4096;
  // Stops Cap'n Proto amplification attacks (pointer loops, deep nesting).
  uint64_t traversal_limit_words = 1024;
  int nesting_limit = 8;
};

class Certificate {
 public:
  // Signs a certificate with the authority key. `fields.authority` is ignored
  // and set to authority.public_key(). InvalidArgument if a field is empty or
  // the scope/code are malformed.
  static Result<Certificate> Issue(const CertificateFields& fields, const SigningKey& authority);

  // Parses and verifies `bytes`. Fails with Corruption (malformed or over a
  // limit), BadSignature (does not verify), Unauthorized (signed by a key
  // other than `authority`).
  static Result<Certificate> Parse(std::string_view bytes, const PublicKey& authority,
                                   const CertificateParseOptions& options = {});

  const CertificateFields& fields() const { return fields_; }
  // The exact signed bytes, as stored and sent.
  const std::string& bytes() const { return bytes_; }

 private:
  CertificateFields fields_;
  std::string bytes_;
};

// What offline enrolment hands a station (`aidsync enroll` → `install-cert`):
// its own certificate and the enrolling hub's, so the station knows the hub's
// key before it first hears from it.
struct Enrolment {
  std::string certificate;      // SignedCertificate bytes of the station
  std::string hub_certificate;  // SignedCertificate bytes of the hub
};

// Serializes an enrolment file (canonical Cap'n Proto EnrolmentFile).
std::string EncodeEnrolment(const Enrolment& enrolment);
// Parses an enrolment file's structure; the certificates inside are verified
// by whoever installs them. Corruption if malformed or over 16 KiB.
Result<Enrolment> DecodeEnrolment(std::string_view bytes);

}  // namespace aidsync
