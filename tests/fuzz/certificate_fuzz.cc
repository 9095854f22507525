// Fuzz target `certificate`: certificate and revocation parsing and
// verification (crypto/certificate.h, crypto/revocation.h, under their
// product limits), enrolment files, and what a node does with a certificate
// or revocation that verifies (tests/fuzz/fuzz_county.h's hub). Certificates
// arrive in every hello and batch; revocations in welcomes, pushes and
// bundles; enrolment files on sticks.
//
// Input: byte 0 chooses the mode (mod 5); the rest is:
//   0  a SignedCertificate, parsed against the county authority
//   1  a SignedRevocation, parsed against the county authority
//   2  an enrolment file (`aidsync enroll` output)
//   3  a certificate body, put in canonical form and signed by the county
//      authority (tests/fuzz/resign.h): the hub then trusts it and records
//      the station it names
//   4  a revocation body, signed by the county authority: the hub stores it
//      and takes back what the revoked key wrote past its limits
//
// Checked per input: received bytes that verify are exactly what Issue makes
// of the parsed fields (no second encoding of a signed object verifies), and
// any verified fields survive Issue and Parse unchanged; nothing verifies
// against another authority; an enrolment file's certificates survive
// re-encoding; after a revocation is stored, no changeset of the revoked key
// past its chain's limit stays in the log, and Rebuild() reproduces the
// tables the take-back left.
#include <cstdint>
#include <string>
#include <vector>

#include "crypto/certificate.h"
#include "crypto/revocation.h"
#include "schema/certificate.capnp.h"
#include "schema/revocation.capnp.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/resign.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() {
  return {"certificate verified", "revocation verified", "enrolment decoded", "re-signed certificate recorded",
          "re-signed revocation stored"};
}

namespace {

// Whether an object that verifies must be byte for byte what Issue makes of
// its fields. Received bytes: yes — the outer struct is not signed, so any
// second form would be malleability. A body the authority itself signed
// (modes 3 and 4): no — bits this version does not read (a newer version's
// fields) are signed and kept; there the parsed fields must survive Issue.
enum class Origin { kReceived, kSignedByAuthority };

bool SameFields(const CertificateFields& a, const CertificateFields& b) {
  return a.node_key == b.node_key && a.name == b.name && a.code == b.code && a.role == b.role &&
         a.scope == b.scope && a.issued_at_ms == b.issued_at_ms && a.authority == b.authority;
}

bool SameFields(const RevocationFields& a, const RevocationFields& b) {
  return a.node_key == b.node_key && a.chains == b.chains && a.revoked_at_ms == b.revoked_at_ms &&
         a.reason == b.reason && a.authority == b.authority;
}

// Checks Issue against what Parse accepted (see Origin).
template <typename T>
void CheckReissue(County& county, const T& parsed, std::string_view bytes, Origin origin, const char* what) {
  auto reissued = T::Issue(parsed.fields(), county.authority());
  AIDSYNC_FUZZ_CHECK(reissued.ok(), std::string("a verified ") + what +
                                        "'s fields do not issue: " + reissued.status().ToString());
  if (origin == Origin::kReceived) {
    AIDSYNC_FUZZ_CHECK(reissued->bytes() == bytes, std::string("a ") + what +
                                                       " verifies in a form Issue does not make:\n  parsed " +
                                                       ToHex(bytes) + "\n  issued " + ToHex(reissued->bytes()));
  }
  auto again = T::Parse(reissued->bytes(), county.authority().public_key());
  AIDSYNC_FUZZ_CHECK(again.ok() && SameFields(again->fields(), parsed.fields()),
                     std::string("a ") + what + "'s fields change through Issue and Parse");
}

void ParseCertificate(County& county, std::string_view bytes, Origin origin = Origin::kReceived) {
  auto cert = Certificate::Parse(bytes, county.authority().public_key());
  if (!cert.ok()) return;
  Reached("certificate verified");
  CheckReissue(county, *cert, bytes, origin, "certificate");
  AIDSYNC_FUZZ_CHECK(!Certificate::Parse(bytes, county.stranger().public_key()).ok(),
                     "a certificate verifies against another authority");
}

void ParseRevocation(County& county, std::string_view bytes, Origin origin = Origin::kReceived) {
  auto revocation = Revocation::Parse(bytes, county.authority().public_key());
  if (!revocation.ok()) return;
  Reached("revocation verified");
  CheckReissue(county, *revocation, bytes, origin, "revocation");
  AIDSYNC_FUZZ_CHECK(!Revocation::Parse(bytes, county.stranger().public_key()).ok(),
                     "a revocation verifies against another authority");
}

void DecodeEnrolmentFile(County& county, std::string_view bytes) {
  auto enrolment = DecodeEnrolment(bytes);
  if (!enrolment.ok()) return;
  Reached("enrolment decoded");
  // Not byte for byte: the file is not signed, and fields of a newer
  // version (unknown here) are skipped, not refused.
  auto again = DecodeEnrolment(EncodeEnrolment(*enrolment));
  AIDSYNC_FUZZ_CHECK(again.ok() && again->certificate == enrolment->certificate &&
                         again->hub_certificate == enrolment->hub_certificate,
                     "an enrolment file changes on a decode/encode round trip");
  ParseCertificate(county, enrolment->certificate);
  ParseCertificate(county, enrolment->hub_certificate);
}

void RecordResignedCertificate(County& county, std::string_view body) {
  auto canonical = CanonicalBody<wire::CertificateBody>(body);
  if (!canonical) return;
  const std::string bytes = SignBody<wire::SignedCertificate>(*canonical, "aidsync certificate v1", county.authority());
  auto cert = Certificate::Parse(bytes, county.authority().public_key());
  if (!cert.ok()) return;
  ParseCertificate(county, bytes, Origin::kSignedByAuthority);
  Replica& hub = *county.Fresh(NodeId::kHub).replica;
  auto added = hub.AddCertificate(bytes);
  Status recorded = hub.RecordStation(*cert);
  Note("certificate for " + cert->fields().code + ": added " + (added.ok() ? "ok" : added.status().ToString()) +
       ", recorded " + recorded.ToString());
  if (recorded.ok()) Reached("re-signed certificate recorded");
  AIDSYNC_FUZZ_CHECK(hub.GetStatus().ok(), "the hub cannot report its status after a certificate");
}

// The changesets of the revoked key still in the log past the limit the
// revocation sets, one line each. Compared here in uint64 as the product
// does: SQLite holds sequence numbers and limits as (cast) int64.
std::string PastTheLimit(Replica& replica, const Revocation& revocation) {
  auto result = replica.Query("SELECT scope, class, seq FROM aidsync_log WHERE author = x'" +
                              revocation.fields().node_key.Hex() + "'");
  AIDSYNC_FUZZ_CHECK(result.ok(), result.status().ToString());
  std::string out;
  for (const auto& row : result->rows) {
    const std::string scope = row.at(0).ToDisplay();
    const TableClass cls = std::get<int64_t>(row.at(1).v) == 0 ? TableClass::kReference : TableClass::kCase;
    const uint64_t seq = static_cast<uint64_t>(std::get<int64_t>(row.at(2).v));
    const uint64_t limit = revocation.LastValidSeq(scope, cls);
    if (seq > limit)
      out += "  " + scope + " " + TableClassName(cls) + " seq " + std::to_string(seq) + " > " + std::to_string(limit) + "\n";
  }
  return out;
}

std::string Describe(const RevocationFields& f) {
  std::string out = "revocation of " + f.node_key.Hex().substr(0, 16) + ", chains:";
  for (const auto& c : f.chains)
    out += " [" + c.scope + " " + TableClassName(c.cls) + " last " + std::to_string(c.last_seq) + "]";
  return out;
}

void StoreResignedRevocation(County& county, std::string_view body) {
  auto canonical = CanonicalBody<wire::RevocationBody>(body);
  if (!canonical) return;
  const std::string bytes = SignBody<wire::SignedRevocation>(*canonical, "aidsync revocation v1", county.authority());
  auto revocation = Revocation::Parse(bytes, county.authority().public_key());
  if (!revocation.ok()) return;
  ParseRevocation(county, bytes, Origin::kSignedByAuthority);
  Replica& hub = *county.Fresh(NodeId::kHub).replica;
  auto added = hub.AddRevocation(bytes);
  Note("revocation: " + (added.ok() ? std::string(*added ? "new" : "known") : added.status().ToString()));
  if (!added.ok() || !*added) return;
  Reached("re-signed revocation stored");
  const std::string past = PastTheLimit(hub, *revocation);
  AIDSYNC_FUZZ_CHECK(past.empty(), "a revoked key's changesets past its limit stayed in the log after the " +
                                       Describe(revocation->fields()) + ":\n" + past);
  const std::string state = DumpState(hub);
  AIDSYNC_FUZZ_CHECK(hub.Rebuild().ok(), "Rebuild failed after a revocation");
  AIDSYNC_FUZZ_CHECK(DumpState(hub) == state, "Rebuild differs from the state a revocation left");
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync::fuzz;
  if (size < 1) return 0;
  County& county = County::Get();
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: ParseCertificate(county, rest); break;
    case 1: ParseRevocation(county, rest); break;
    case 2: DecodeEnrolmentFile(county, rest); break;
    case 3: RecordResignedCertificate(county, rest); break;
    default: StoreResignedRevocation(county, rest); break;
  }
  return 0;
}
