#include "crypto/certificate.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <cstring>

#include "crypto/signed_body.h"
#include "schema/canonical.h"
#include "schema/certificate.capnp.h"
#include "schema/scope.h"

namespace aidsync {
namespace {

constexpr char kCertificateContext[] = "aidsync certificate v1";
constexpr size_t kMaxNameBytes = 200;

// Names are shown in terminals and the status page; control characters there
// could rewrite what an admin sees.
Status ValidateName(std::string_view name) {
  if (name.empty()) return Status::InvalidArgument("station name is empty");
  if (name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("station name is " + std::to_string(name.size()) +
                                   " bytes, longer than the limit of 200");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return Status::InvalidArgument("station name contains a control character");
    }
  }
  return Status::OK();
}

// The checks shared by Issue (on the caller's input) and Parse (on what the
// authority signed): a certificate that Issue would refuse never parses.
Status ValidateFields(const CertificateFields& fields) {
  if (fields.node_key == PublicKey{}) return Status::InvalidArgument("node key is empty");
  if (fields.role != Role::kHub && fields.role != Role::kStation) {
    return Status::InvalidArgument("role must be hub or station");
  }
  RETURN_IF_ERROR(ValidateName(fields.name));
  RETURN_IF_ERROR(ValidateStationCode(fields.code));
  return ValidateScope(fields.scope);
}

std::string BuildBody(const CertificateFields& fields) {
  capnp::MallocMessageBuilder message;
  auto body = message.initRoot<wire::CertificateBody>();
  body.setNodeKey(DataOf(fields.node_key.view()));
  body.setName(fields.name);
  body.setCode(fields.code);
  body.setRole(fields.role == Role::kHub ? wire::Role::HUB : wire::Role::STATION);
  body.setScope(fields.scope);
  body.setIssuedAtMs(fields.issued_at_ms);
  body.setAuthority(DataOf(fields.authority.view()));
  return SerializeCanonical(body.asReader());
}

Result<CertificateFields> ReadBody(std::string_view body_bytes,
                                   const CertificateParseOptions& options) {
  ASSIGN_OR_RETURN(auto message,
                   CanonicalMessage::Parse(body_bytes, signed_body::ReaderOptionsOf(options), "certificate body"));
  auto body = message->Root<wire::CertificateBody>();
  CertificateFields fields;
  ASSIGN_OR_RETURN(fields.node_key, signed_body::ReadKey(body.getNodeKey(), "node key"));
  ASSIGN_OR_RETURN(fields.authority, signed_body::ReadKey(body.getAuthority(), "authority key"));
  fields.name = body.getName();
  fields.code = body.getCode();
  fields.scope = body.getScope();
  fields.issued_at_ms = body.getIssuedAtMs();
  switch (body.getRole()) {
    case wire::Role::HUB:
      fields.role = Role::kHub;
      break;
    case wire::Role::STATION:
      fields.role = Role::kStation;
      break;
    default:
      return Status::Corruption("certificate has an unknown role");
  }
  return fields;
}

// Everything Parse checks except the size limit; may throw kj::Exception.
Status ParseChecked(std::string_view bytes, const PublicKey& authority,
                    const CertificateParseOptions& options, CertificateFields& fields) {
  ASSIGN_OR_RETURN(signed_body::Parts parts,
                   signed_body::Read<wire::SignedCertificate>(bytes, signed_body::ReaderOptionsOf(options), "certificate"));
  ASSIGN_OR_RETURN(fields, ReadBody(parts.body, options));
  Status valid = ValidateFields(fields);
  if (!valid.ok())
    return Status::Corruption("certificate has an invalid field: " + valid.message());
  if (fields.authority != authority) {
    return Status::Unauthorized("certificate for station '" + fields.code +
                                "' was issued by authority " + fields.authority.Hex() +
                                ", not by this county's authority " + authority.Hex());
  }
  Digest digest = ComputeDigest(kCertificateContext, parts.body);
  if (!VerifyDigestSignature(authority, digest, parts.signature)) {
    return Status::BadSignature("certificate for station '" + fields.code +
                                "' does not carry a valid authority signature");
  }
  return Status::OK();
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kHub:
      return "hub";
    case Role::kStation:
      return "station";
  }
  return "unknown";
}

Result<Certificate> Certificate::Issue(const CertificateFields& fields,
                                       const SigningKey& authority) {
  RETURN_IF_ERROR(ValidateFields(fields));
  Certificate cert;
  cert.fields_ = fields;
  cert.fields_.authority = authority.public_key();
  std::string body = BuildBody(cert.fields_);
  Signature sig = authority.SignDigest(ComputeDigest(kCertificateContext, body));
  cert.bytes_ = signed_body::Build<wire::SignedCertificate>(body, sig);
  return cert;
}

Result<Certificate> Certificate::Parse(std::string_view bytes, const PublicKey& authority,
                                       const CertificateParseOptions& options) {
  if (bytes.size() > options.max_bytes) {
    return Status::Corruption("certificate is " + std::to_string(bytes.size()) +
                              " bytes, over the limit of " + std::to_string(options.max_bytes));
  }
  Certificate cert;
  try {
    RETURN_IF_ERROR(ParseChecked(bytes, authority, options, cert.fields_));
  } catch (const kj::Exception& e) {
    return Status::Corruption("certificate is malformed: " +
                              std::string(e.getDescription().cStr()));
  }
  cert.bytes_ = std::string(bytes);
  return cert;
}

std::string EncodeEnrolment(const Enrolment& enrolment) {
  capnp::MallocMessageBuilder message;
  auto file = message.initRoot<wire::EnrolmentFile>();
  file.setCertificate(DataOf(enrolment.certificate));
  file.setIssuer(DataOf(enrolment.hub_certificate));
  return SerializeCanonical(file.asReader());
}

Result<Enrolment> DecodeEnrolment(std::string_view bytes) {
  constexpr size_t kMaxEnrolmentBytes = 16 * 1024;
  if (bytes.size() > kMaxEnrolmentBytes) return Status::Corruption("enrolment file is too large");
  capnp::ReaderOptions options;
  options.traversalLimitInWords = kMaxEnrolmentBytes / 8;  // no amplification past the file itself
  options.nestingLimit = 4;
  ASSIGN_OR_RETURN(auto message, CanonicalMessage::Parse(bytes, options, "enrolment file"));
  try {
    auto file = message->Root<wire::EnrolmentFile>();
    Enrolment out;
    out.certificate = std::string(DataView(file.getCertificate()));
    out.hub_certificate = std::string(DataView(file.getIssuer()));
    return out;
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("enrolment file is malformed: ") + e.getDescription().cStr());
  }
}

}  // namespace aidsync
