#include "sync/chain_head.h"

#include <algorithm>
#include <map>

namespace aidsync {

void FoldIntoFingerprint(const Digest& id, Digest* fingerprint) {
  for (size_t i = 0; i < kDigestBytes; ++i) fingerprint->bytes[i] ^= id.bytes[i];
}

Digest HeadsDigest(std::vector<ChainHead> heads) {
  std::sort(heads.begin(), heads.end(), [](const ChainHead& a, const ChainHead& b) { return a.chain < b.chain; });
  std::string text;
  for (const auto& h : heads) {
    text.append(h.chain.author.view());
    text.append(h.chain.scope);
    text.push_back('\0');
    text.push_back(static_cast<char>(h.chain.cls));
    text.append(std::to_string(h.seq)).push_back(' ');
    text.append(h.head.view());
    text.append(std::to_string(h.count)).push_back(' ');
    text.append(h.fingerprint.view());
  }
  return ComputeDigest("aidsync heads v1", text);
}

std::vector<ChainGap> GapsFor(const std::vector<ChainHead>& ours, const std::vector<ChainHead>& theirs,
                              const std::function<bool(const Digest&)>& we_hold) {
  std::map<ChainId, const ChainHead*> peer;
  for (const auto& h : theirs) peer[h.chain] = &h;
  std::vector<ChainGap> gaps;
  for (const auto& mine : ours) {
    auto it = peer.find(mine.chain);
    if (it == peer.end()) {
      gaps.push_back({mine.chain, 0, mine.count});
      continue;
    }
    const ChainHead& other = *it->second;
    if (other.fingerprint == mine.fingerprint) continue;
    bool straight = mine.seq > other.seq && mine.count >= other.count &&
                    mine.count - other.count == mine.seq - other.seq && we_hold(other.head);
    // The peer is ahead on what looks like the same straight chain: it has
    // nothing to learn from us. (Had we a branch it lacks, it cannot find our
    // head and sends us its whole chain; our next session then sees the fork.)
    bool peer_ahead = other.seq > mine.seq && other.count >= mine.count &&
                      other.count - mine.count == other.seq - mine.seq;
    if (straight) {
      gaps.push_back({mine.chain, other.seq, mine.count - other.count});
    } else if (peer_ahead) {
      continue;
    } else {
      // Forked, or the peer holds a branch we do not: offer the whole chain.
      gaps.push_back({mine.chain, 0, mine.count > other.count ? mine.count - other.count : 0});
    }
  }
  return gaps;
}

}  // namespace aidsync
