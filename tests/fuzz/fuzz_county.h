// The small county every fuzz target runs against (tests/fuzz, issue 6 item 4),
// and fresh copies of its replicas for each fuzz input.
//
// The county is built once per process, through the product's own API, from
// a fixed seed and a fixed clock, so it is byte-for-byte the same in every
// process: the keys, certificates, revocation and signed changesets that
// tests/fuzz/make_corpus.cc writes into the seed corpus are the ones a fuzz
// target's replicas trust. Change what this file builds (or the order it
// draws keys in) and the corpus must be regenerated (make_corpus).
//
// What it holds (the names are the county's; see /work/shared/domain):
//   authority   the county's signing key
//   hub         县法律援助中心 0500, scope 430123: the lawyer roster, a notice,
//               a yearly target; it synced station 0512's first writes, edited
//               one of its cases itself, revoked station 0514, and holds two
//               invites (one live, one expired)
//   0512        城关镇工作站, 430123/05: an application, a case and a
//               consultation synced to the hub, then more writes (a new
//               application, the case moved on, a return visit, a deleted
//               consultation) the hub has not seen
//   0513        白沙镇工作站, 430123/06: a hotline ticket the hub has not seen
//   0514        新华村联系点, 430123/05/017: revoked after its one consultation
//               reached the hub
//
// Each input gets a fresh replica: Fresh() rewrites a node's data dir from an
// in-memory copy of its files, so nothing an input did survives into the next
// one and every crash replays from its input alone. Data dirs live in
// $AIDSYNC_FUZZ_TMP, else /dev/shm (SQLite's fsyncs cost nothing on tmpfs),
// else $TMPDIR or /tmp, and are removed at exit.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "crypto/certificate.h"
#include "crypto/invite.h"
#include "crypto/keys.h"
#include "crypto/revocation.h"
#include "sync/replica.h"
#include "sync/sync_session.h"
#include "tests/test_support.h"

namespace aidsync::fuzz {

// 2024-06-15 12:00:00 UTC plus the county's working hours; every fresh replica
// starts at this time.
constexpr int64_t kNowMs = 1718452800000 + 8 * 3600 * 1000;

// The session id the recorded sync sessions (and the client mode of the
// sync_message target) use.
constexpr uint64_t kClientSession = 4242;

// The sync options of the recorded sessions and of the sync_message target's
// client and server: small batches, so a session of a few KB of seed takes
// several round trips; the product's limits on received messages.
inline SyncOptions FuzzSyncOptions() {
  SyncOptions options;
  options.batch_bytes = 4096;
  return options;
}

// The address the client mode's SyncClient records for the hub.
constexpr const char* kHubAddress = "tcp://127.0.0.1:7700";

// A wall clock the fuzz target sets. Thread-safe.
class FixedClock final : public Clock {
 public:
  int64_t NowMillis() override { return now_.load(); }
  void Set(int64_t ms) { now_.store(ms); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_{kNowMs};
};

enum class NodeId { kHub = 0, k0512 = 1, k0513 = 2, k0514 = 3 };
constexpr int kNodeCount = 4;

// One node's working copy: its data dir, clock, random source and replica.
struct WorkingNode {
  std::string dir;
  FixedClock clock;
  std::unique_ptr<testing::SeededRandom> random;
  Env env;
  std::unique_ptr<Replica> replica;
};

class County {
 public:
  // The county of this process, built on first use. Aborts (naming the step)
  // if it cannot be built: every target depends on it.
  static County& Get();

  // A fresh replica of `node` as the county left it, at kNowMs with a
  // freshly seeded random source. Valid until the next Fresh(node). The
  // returned WorkingNode's clock may be moved by the caller.
  WorkingNode& Fresh(NodeId node);

  const SigningKey& authority() const { return authority_; }
  const SigningKey& KeyOf(NodeId node) const { return *keys_.at(static_cast<int>(node)); }
  const Certificate& CertificateOf(NodeId node) const { return certs_.at(static_cast<int>(node)); }
  // A key the county never enrolled (an outsider with a valid key pair).
  const SigningKey& stranger() const { return stranger_; }
  // The keys of two would-be stations that hold the hub's invites.
  const SigningKey& joiner(int i) const { return i == 0 ? joiner_a_ : joiner_b_; }
  // The secrets of the hub's invites: live (until kNowMs + 7 days), expired.
  const InviteSecret& live_invite() const { return live_invite_; }
  const InviteSecret& expired_invite() const { return expired_invite_; }
  // The revocation of 0514 the hub issued.
  const Revocation& revocation() const { return *revocation_; }
  // The token `aidsync invite` would print for the live invite.
  const std::string& live_token() const { return live_token_; }

  // Changesets (envelopes) the hub does not hold yet: 0512's later writes and
  // 0513's ticket, in each author's chain order.
  const std::vector<std::string>& unsynced_envelopes() const { return unsynced_; }
  // Every changeset in the hub's log, in log order.
  const std::vector<std::string>& hub_envelopes() const { return hub_log_; }
  // Rows the county wrote, by table, for seeds that refer to them.
  const std::string& senior_lawyer_id() const { return senior_; }
  const std::string& case_id() const { return case_; }

  // A scratch file path inside this process's fuzz dir (for import files and
  // bundles the targets write). `name` must be a plain file name.
  std::string ScratchFile(const std::string& name) const { return root_ + "/" + name; }

  County(const County&) = delete;
  County& operator=(const County&) = delete;
  ~County();

 private:
  County();
  void Build();
  // Closes `node`'s replica (SQLite checkpoints its WAL into replica.db) and
  // keeps every file of its data dir in memory as the node's template.
  void Freeze(NodeId node);

  std::string root_;
  testing::SeededRandom random_;
  SigningKey authority_;
  SigningKey stranger_, joiner_a_, joiner_b_;
  std::vector<std::unique_ptr<SigningKey>> keys_;
  std::vector<Certificate> certs_;
  std::unique_ptr<Revocation> revocation_;
  InviteSecret live_invite_, expired_invite_;
  std::string live_token_;
  std::vector<std::string> unsynced_, hub_log_;
  std::string senior_, case_;
  WorkingNode work_[kNodeCount];
  std::map<std::string, std::string> templates_[kNodeCount];  // file name -> bytes
};

// Every replicated table of `replica` as text, one line per row, then every
// open conflict (for comparing a replica before and after an input).
std::string DumpState(Replica& replica);

// The number of changesets in `replica`'s log, or -1 if the store cannot say.
int64_t LogSize(Replica& replica);

}  // namespace aidsync::fuzz
