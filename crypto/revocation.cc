#include "crypto/revocation.h"

#include <algorithm>

#include "crypto/signed_body.h"
#include "schema/revocation.capnp.h"
#include "schema/scope.h"

namespace aidsync {
namespace {

constexpr char kRevocationContext[] = "aidsync revocation v1";
constexpr size_t kMaxReasonBytes = 500;

wire::TableClass ToWire(TableClass cls) {
  return cls == TableClass::kReference ? wire::TableClass::REFERENCE : wire::TableClass::CASE;
}

// The checks shared by Issue and Parse: a revocation Issue would refuse never parses.
Status ValidateFields(const RevocationFields& fields, size_t max_chains) {
  if (fields.node_key == PublicKey{}) return Status::InvalidArgument("revoked key is empty");
  if (fields.reason.size() > kMaxReasonBytes)
    return Status::InvalidArgument("revocation reason is longer than " + std::to_string(kMaxReasonBytes) + " bytes");
  // The reason is shown in terminals and logs: no control characters.
  for (unsigned char c : fields.reason)
    if (c < 0x20 || c == 0x7f) return Status::InvalidArgument("revocation reason contains a control character");
  if (fields.chains.size() > max_chains)
    return Status::InvalidArgument("revocation names " + std::to_string(fields.chains.size()) +
                                   " chains, over the limit of " + std::to_string(max_chains));
  for (size_t i = 0; i < fields.chains.size(); ++i) {
    RETURN_IF_ERROR(ValidateScope(fields.chains[i].scope));
    // Sorted and unique, so one chain has exactly one limit.
    if (i > 0 && !(std::tie(fields.chains[i - 1].scope, fields.chains[i - 1].cls) <
                   std::tie(fields.chains[i].scope, fields.chains[i].cls)))
      return Status::InvalidArgument("revocation lists chains out of order or twice");
  }
  return Status::OK();
}

std::string BuildBody(const RevocationFields& fields) {
  capnp::MallocMessageBuilder message;
  auto body = message.initRoot<wire::RevocationBody>();
  body.setNodeKey(DataOf(fields.node_key.view()));
  auto chains = body.initChains(static_cast<unsigned>(fields.chains.size()));
  for (size_t i = 0; i < fields.chains.size(); ++i) {
    chains[i].setScope(fields.chains[i].scope);
    chains[i].setTableClass(ToWire(fields.chains[i].cls));
    chains[i].setLastSeq(fields.chains[i].last_seq);
  }
  body.setRevokedAtMs(fields.revoked_at_ms);
  body.setReason(fields.reason);
  body.setAuthority(DataOf(fields.authority.view()));
  return SerializeCanonical(body.asReader());
}

Result<RevocationFields> ReadBody(std::string_view bytes, const RevocationParseOptions& options) {
  ASSIGN_OR_RETURN(auto message, CanonicalMessage::Parse(bytes, signed_body::ReaderOptionsOf(options), "revocation body"));
  auto body = message->Root<wire::RevocationBody>();
  RevocationFields fields;
  ASSIGN_OR_RETURN(fields.node_key, signed_body::ReadKey(body.getNodeKey(), "revoked key"));
  ASSIGN_OR_RETURN(fields.authority, signed_body::ReadKey(body.getAuthority(), "authority key"));
  auto chains = body.getChains();
  if (chains.size() > options.max_chains)
    return Status::Corruption("revocation names " + std::to_string(chains.size()) + " chains, over the limit of " +
                              std::to_string(options.max_chains));
  for (auto c : chains) {
    ChainLimit limit;
    limit.scope = c.getScope();
    switch (c.getTableClass()) {
      case wire::TableClass::REFERENCE: limit.cls = TableClass::kReference; break;
      case wire::TableClass::CASE: limit.cls = TableClass::kCase; break;
      default: return Status::Corruption("revocation names an unknown table class");
    }
    limit.last_seq = c.getLastSeq();
    fields.chains.push_back(std::move(limit));
  }
  fields.revoked_at_ms = body.getRevokedAtMs();
  fields.reason = body.getReason();
  return fields;
}

Status ParseChecked(std::string_view bytes, const PublicKey& authority, const RevocationParseOptions& options,
                    RevocationFields& fields) {
  ASSIGN_OR_RETURN(signed_body::Parts parts,
                   signed_body::Read<wire::SignedRevocation>(bytes, signed_body::ReaderOptionsOf(options), "revocation"));
  ASSIGN_OR_RETURN(fields, ReadBody(parts.body, options));
  Status valid = ValidateFields(fields, options.max_chains);
  if (!valid.ok()) return Status::Corruption("revocation has an invalid field: " + valid.message());
  if (fields.authority != authority)
    return Status::Unauthorized("revocation of " + fields.node_key.Hex().substr(0, 16) + " was signed by authority " +
                                fields.authority.Hex() + ", not by this county's authority");
  if (!VerifyDigestSignature(authority, ComputeDigest(kRevocationContext, parts.body), parts.signature))
    return Status::BadSignature("revocation of " + fields.node_key.Hex().substr(0, 16) +
                                " does not carry a valid authority signature");
  return Status::OK();
}

}  // namespace

Result<Revocation> Revocation::Issue(RevocationFields fields, const SigningKey& authority) {
  std::sort(fields.chains.begin(), fields.chains.end());
  fields.authority = authority.public_key();
  RETURN_IF_ERROR(ValidateFields(fields, RevocationParseOptions{}.max_chains));
  Revocation r;
  r.fields_ = std::move(fields);
  std::string body = BuildBody(r.fields_);
  Signature sig = authority.SignDigest(ComputeDigest(kRevocationContext, body));
  r.bytes_ = signed_body::Build<wire::SignedRevocation>(body, sig);
  return r;
}

Result<Revocation> Revocation::Parse(std::string_view bytes, const PublicKey& authority,
                                     const RevocationParseOptions& options) {
  if (bytes.size() > options.max_bytes)
    return Status::Corruption("revocation is " + std::to_string(bytes.size()) + " bytes, over the limit of " +
                              std::to_string(options.max_bytes));
  Revocation r;
  try {
    RETURN_IF_ERROR(ParseChecked(bytes, authority, options, r.fields_));
  } catch (const kj::Exception& e) {
    return Status::Corruption(std::string("revocation is malformed: ") + e.getDescription().cStr());
  }
  r.bytes_ = std::string(bytes);
  return r;
}

Digest Revocation::id() const { return ComputeDigest("aidsync revocation id", bytes_); }

uint64_t Revocation::LastValidSeq(const std::string& scope, TableClass cls) const {
  for (const auto& c : fields_.chains)
    if (c.scope == scope && c.cls == cls) return c.last_seq;
  return 0;
}

}  // namespace aidsync
