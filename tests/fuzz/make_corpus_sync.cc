// Seeds of the fuzz targets whose inputs are sync traffic: recorded sessions
// (sync_message), changesets (changeset) and bundles (bundle). See
// make_corpus.cc; each target's file comment describes its input layout.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "crypto/sealed_stream.h"
#include "schema/changeset.capnp.h"
#include "sync/bundle.h"
#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/fuzz/changeset_edits.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/make_corpus.h"
#include "tests/fuzz/resign.h"

namespace aidsync::fuzz {
namespace {

std::string Mode(int mode) { return std::string(1, static_cast<char>(mode)); }

std::string CurveHexOf(const PublicKey& key) {
  auto curve = DeriveCurvePublic(key);
  if (!curve.ok()) Fail("no Curve key: " + curve.status().ToString());
  return ToHex(std::string_view(reinterpret_cast<const char*>(curve->data()), curve->size()));
}

struct Recorded {
  std::vector<std::string> requests, replies;
};

// A whole session of `client_node` with the hub, both fresh, recorded the way
// the sync_message target replays it (same options, same clock steps).
// `packing` false records two nodes from before packed changesets: plain
// lists both ways.
Recorded RecordSession(County& county, NodeId client_node, bool packing = true) {
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  WorkingNode& station = county.Fresh(client_node);
  SyncOptions options = FuzzSyncOptions();
  options.packing = packing;
  SyncServer server(*hub.replica, options);
  SyncClient client(*station.replica, county.CertificateOf(NodeId::kHub), kHubAddress, kClientSession, options);
  const std::string curve = CurveHexOf(station.replica->identity().key);
  Recorded r;
  auto first = client.Start();
  if (!first.ok()) Fail("the recorded client cannot start: " + first.status().ToString());
  std::string request = *first;
  for (int round = 0; round < 100; ++round) {
    r.requests.push_back(request);
    r.replies.push_back(server.Handle("fuzz-peer", curve, request));
    hub.clock.Advance(1000);
    auto next = client.OnReply(r.replies.back());
    if (!next.ok()) Fail("the recorded session failed: " + next.status().ToString());
    station.clock.Advance(1000);
    if (!next->has_value()) break;
    request = **next;
  }
  if (!client.complete()) Fail("the recorded session did not complete");
  return r;
}

}  // namespace

Seeds SyncMessageSeeds(County& county) {
  Seeds seeds;
  Recorded chengguan = RecordSession(county, NodeId::k0512);
  seeds["server-0512-session"] = Mode(0) + JoinParts(chengguan.requests);
  seeds["server-0512-hello"] = Mode(0) + chengguan.requests.front();
  seeds["client-0512-session"] = Mode(3) + JoinParts(chengguan.replies);
  // Old peers' traffic: plain changesets, no accepts bits.
  Recorded plain = RecordSession(county, NodeId::k0512, false);
  seeds["server-0512-session-plain"] = Mode(0) + JoinParts(plain.requests);
  seeds["client-0512-session-plain"] = Mode(3) + JoinParts(plain.replies);
  Recorded baisha = RecordSession(county, NodeId::k0513);
  seeds["server-0513-session"] = Mode(1) + JoinParts(baisha.requests);
  seeds["client-0513-replies-to-0512"] = Mode(3) + JoinParts(baisha.replies);
  // A stranger presents 0512's certificate, then one it signed itself.
  seeds["server-stranger-borrowed-hello"] = Mode(2) + chengguan.requests.front();
  CertificateFields own{county.stranger().public_key(), "白沙镇工作站", "0513", Role::kStation, "430123/06", kNowMs, {}};
  auto self_signed = Certificate::Issue(own, county.stranger());
  if (!self_signed.ok()) Fail(self_signed.status().ToString());
  seeds["server-stranger-self-signed"] =
      Mode(2) + EncodeMessage({kProtocolVersion, 7, HelloMsg{self_signed->bytes(), kNowMs, std::nullopt, std::nullopt}});
  // Messages a server never expects: a batch, a version from the future, a push without a hello.
  seeds["server-unexpected-kinds"] =
      Mode(0) + JoinParts({EncodeMessage({kProtocolVersion, 9, BatchMsg{}}),
                           EncodeMessage({kProtocolVersion + 1, 9, RefusedMsg{"later", "新版本"}}),
                           chengguan.requests.size() > 1 ? chengguan.requests[1] : chengguan.requests[0]});
  return seeds;
}

Seeds ChangesetSeeds(County& county) {
  Seeds seeds;
  const auto& unsynced = county.unsynced_envelopes();
  seeds["raw-unsynced"] = Mode(0) + JoinParts(unsynced);
  seeds["raw-unsynced-reversed"] = Mode(0) + JoinParts({unsynced.rbegin(), unsynced.rend()});
  seeds["raw-first"] = Mode(0) + unsynced.front();
  seeds["raw-duplicate-from-hub"] = Mode(0) + county.hub_envelopes().back();
  std::vector<std::string> bodies;
  for (const auto& envelope : unsynced) bodies.push_back(BodyOf<wire::SignedChangeset>(envelope));
  const char kKeepAuthor = 5, kRevoked0514 = 3, kStation0513 = 2;
  seeds["resign-bodies"] = Mode(1) + std::string(1, kKeepAuthor) + JoinParts(bodies);
  seeds["resign-by-revoked-0514"] = Mode(1) + std::string(1, kRevoked0514) + bodies.front();
  seeds["resign-by-0513"] = Mode(1) + std::string(1, kStation0513) + bodies.front();
  auto script = [](std::initializer_list<int> bytes) {
    std::string out = Mode(2);
    for (int b : bytes) out += static_cast<char>(b);
    return out;
  };
  seeds["edit-none"] = script({});
  seeds["edit-hlc-forward"] = script({kSelect, 1, kHlcForward, 0x10, 0x27});
  seeds["edit-scope-of-0513"] = script({kSelect, 0, kScope, 2});
  seeds["edit-author-revoked"] = script({kSelect, 2, kAuthor, 3});
  seeds["edit-fork-seq"] = script({kSelect, 1, kClone, kValue, 0, 0, 0, 3, 4, 'a', 'b', 'c', 'd'});
  seeds["edit-reference-table"] = script({kSelect, 0, kClass, kTableName, 0, 1});
  seeds["edit-unknown-column"] = script({kSelect, 0, kColumnName, 0, 0, 40});
  seeds["edit-overwrite-dep"] = script({kSelect, 2, kAddDep, 2, 0, kAddOverwrite, 0, 0, 0, 0});
  seeds["edit-delete-toggle"] = script({kSelect, 3, kToggleDeleted, 0, 0, 1});
  seeds["edit-first-of-chain"] = script({kSelect, 1, kSeq, 1, kPrev, 0});
  return seeds;
}

Seeds BundleSeeds(County& county) {
  Seeds seeds;
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  const std::string path = county.ScratchFile("seed.bundle");
  std::remove(path.c_str());
  auto created = CreateBundle(*hub.replica, "0512", path);
  if (!created.ok()) Fail("cannot create the hub's bundle: " + created.status().ToString());
  const std::string sealed = testing::ReadFile(path);
  seeds["raw-hub-to-0512"] = Mode(0) + sealed;

  // The same bundle's frames in the clear, as the sealed mode takes them.
  WorkingNode& station = county.Fresh(NodeId::k0512);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  auto reader = SealedStreamReader::Open(in.get(), station.replica->identity_key());
  if (!reader.ok()) Fail("cannot open the hub's bundle: " + reader.status().ToString());
  std::vector<std::string> frames;
  while (true) {
    auto frame = (*reader)->Next();
    if (!frame.ok()) Fail("cannot read the hub's bundle: " + frame.status().ToString());
    if (!frame->has_value()) break;
    frames.push_back(**frame);
  }
  seeds["frames-hub-to-0512"] = Mode(1) + JoinParts(frames);
  seeds["frames-header-only"] = Mode(1) + frames.front();
  // A frame of an unknown kind between the header and the last changeset:
  // the whole bundle is refused.
  seeds["frames-odd"] = Mode(1) + JoinParts({frames.front(), std::string(1, '\x09') + "未知", frames.back()});
  std::remove(path.c_str());
  return seeds;
}

}  // namespace aidsync::fuzz
