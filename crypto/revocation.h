// Revocations: the county authority's signed statement that a node key is
// withdrawn (DESIGN 6). A revocation names, for each of the key's chains, the
// last sequence number that stays valid: what the key signed before it was
// revoked is kept, what it signs after is refused on every node.
//
// Wire/disk format: a Cap'n Proto `SignedRevocation` (schema/revocation.capnp)
// holding the verbatim body and the authority's signature over
// Digest("aidsync revocation v1", body). See docs/FORMATS.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "crypto/keys.h"
#include "schema/legal_aid.h"

namespace aidsync {

struct ChainLimit {
  std::string scope;
  TableClass cls = TableClass::kCase;
  uint64_t last_seq = 0;  // changesets with seq > last_seq are refused
  auto operator<=>(const ChainLimit&) const = default;
};

struct RevocationFields {
  PublicKey node_key;
  std::vector<ChainLimit> chains;  // a chain not listed keeps nothing
  int64_t revoked_at_ms = 0;
  std::string reason;
  PublicKey authority;
};

// Limits applied when parsing a revocation from untrusted bytes.
struct RevocationParseOptions {
  // Stops memory exhaustion from a huge blob claiming to be a revocation.
  size_t max_bytes = 64 * 1024;
  // Stops a revocation from naming more chains than any key could have
  // written (each entry costs a lookup on every changeset of the key).
  size_t max_chains = 1024;
  // Stops Cap'n Proto amplification attacks (pointer loops, deep nesting).
  uint64_t traversal_limit_words = 16 * 1024;
  int nesting_limit = 8;
};

class Revocation {
 public:
  // Signs a revocation with the authority key; `fields.authority` is set to
  // authority.public_key() and the chains are sorted. InvalidArgument for an
  // empty key, a malformed scope, a reason over 500 bytes or duplicate chains.
  static Result<Revocation> Issue(RevocationFields fields, const SigningKey& authority);

  // Parses and verifies `bytes`. Corruption (malformed or over a limit),
  // Unauthorized (another authority), BadSignature (does not verify).
  static Result<Revocation> Parse(std::string_view bytes, const PublicKey& authority,
                                  const RevocationParseOptions& options = {});

  const RevocationFields& fields() const { return fields_; }
  // The exact signed bytes, as stored and sent.
  const std::string& bytes() const { return bytes_; }
  // Digest of bytes(): identifies the revocation.
  Digest id() const;

  // The last valid sequence number of the chain (scope, cls): 0 when the
  // revocation does not list it.
  uint64_t LastValidSeq(const std::string& scope, TableClass cls) const;

 private:
  RevocationFields fields_;
  std::string bytes_;
};

}  // namespace aidsync
