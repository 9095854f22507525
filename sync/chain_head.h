// Chain heads: what a node holds of each chain (author, scope, table class),
// summarized so two nodes can tell in one round trip whether they differ and,
// if so, which changesets each must send (DESIGN 5).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "crypto/keys.h"
#include "schema/legal_aid.h"

namespace aidsync {

struct ChainId {
  PublicKey author;
  std::string scope;
  TableClass cls = TableClass::kCase;
  auto operator<=>(const ChainId&) const = default;
};

// What one node holds of one chain. Value type.
struct ChainHead {
  ChainId chain;
  uint64_t seq = 0;      // highest sequence number held
  Digest head;           // the smallest id among the changesets held at `seq`
  uint64_t count = 0;    // changesets held; more than seq when the chain forked
  Digest fingerprint;    // XOR of the ids of every changeset held in the chain
  bool operator==(const ChainHead&) const = default;
};

// XORs `id` into `fingerprint`: the fingerprint of a set of changesets, the
// same whatever order they arrived in.
void FoldIntoFingerprint(const Digest& id, Digest* fingerprint);

// One digest over a set of heads (sorted by chain first): two nodes whose
// digests agree hold exactly the same changesets of those chains.
Digest HeadsDigest(std::vector<ChainHead> heads);

// Which changesets of one chain a peer lacks, given our head and theirs.
struct ChainGap {
  ChainId chain;
  uint64_t after_seq = 0;  // send every changeset of the chain with seq > after_seq
  uint64_t missing = 0;    // how many we expect the peer lacks (for status)
};

// For every chain in `ours` where the peer's head (in `theirs`, absent = holds
// nothing) differs: the gap to send. A peer behind on the same straight chain
// (we hold its head changeset, and the counts grow with the seq) gets what
// follows its seq; a peer ahead on a straight chain gets nothing; otherwise
// (a fork on either side) the whole chain is sent and the receiver keeps what
// it lacks. `we_hold(id)` says whether a changeset is in our log.
std::vector<ChainGap> GapsFor(const std::vector<ChainHead>& ours, const std::vector<ChainHead>& theirs,
                              const std::function<bool(const Digest&)>& we_hold);

}  // namespace aidsync
