// Fuzz target `sync_message`: the sync protocol's message decoder
// (sync/protocol.h DecodeMessage, under the product's ProtocolLimits) and the
// session state machines behind it (sync/sync_session.h) on fresh replicas of
// the county (tests/fuzz/fuzz_county.h). Any process that can reach a serving
// node's port can send these bytes — CurveZMQ admits every key that is not
// revoked — and a hub can answer a station with anything.
//
// Input: byte 0 chooses the mode (mod 4); the rest is a list of messages
// joined by kPartSeparator, delivered in order on one connection.
//   0  to the hub's SyncServer::Handle, from station 0512's connection key
//   1  the same from 0513's key
//   2  the same from a stranger's key (never enrolled)
//   3  replies to station 0512's SyncClient (session kClientSession), which
//      first sends its hello; stops when the client finishes or fails
//
// Checked per input: every message that decodes re-encodes to bytes that
// decode to the same message; every reply the server sends and every request
// the client sends decodes as the protocol's current version and is a kind
// that side may send; then the server's idle sessions expire cleanly.
#include <cstdint>
#include <string>
#include <vector>

#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() {
  return {"message decoded", "server welcomed a hello", "server applied a push", "server refused a message",
          "client session complete"};
}

namespace {

// DecodeMessage(EncodeMessage(m)) is m, for every m DecodeMessage produces.
void CheckRoundTrip(std::string_view bytes) {
  auto msg = DecodeMessage(bytes);
  if (!msg.ok()) return;
  Reached("message decoded");
  const std::string once = EncodeMessage(*msg);
  auto again = DecodeMessage(once);
  AIDSYNC_FUZZ_CHECK(again.ok(), "a re-encoded message does not decode: " + again.status().ToString());
  AIDSYNC_FUZZ_CHECK(EncodeMessage(*again) == once, "a message changes on a decode/encode round trip");
}

// What the server sent must be a well-formed reply of this protocol version.
void CheckReply(const std::string& reply) {
  auto msg = DecodeMessage(reply);
  AIDSYNC_FUZZ_CHECK(msg.ok(), "the server sent an undecodable reply: " + msg.status().ToString());
  AIDSYNC_FUZZ_CHECK(msg->version == kProtocolVersion, "the server replied in another protocol version");
  const auto& body = msg->body;
  const bool reply_kind = std::holds_alternative<WelcomeMsg>(body) || std::holds_alternative<BatchMsg>(body) ||
                          std::holds_alternative<RefusedMsg>(body) || std::holds_alternative<EnrolledMsg>(body);
  AIDSYNC_FUZZ_CHECK(reply_kind, "the server sent a message only a client sends");
  if (std::holds_alternative<WelcomeMsg>(body)) Reached("server welcomed a hello");
  if (auto* batch = std::get_if<BatchMsg>(&body); batch && batch->applied > 0) Reached("server applied a push");
  if (auto* refused = std::get_if<RefusedMsg>(&body)) {
    Reached("server refused a message");
    Note("refused: " + refused->reason + " (" + refused->detail + ")");
  }
}

void RunServer(County& county, const PublicKey& peer, const std::vector<std::string_view>& messages) {
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  SyncServer server(*hub.replica, FuzzSyncOptions());
  auto curve = DeriveCurvePublic(peer);
  AIDSYNC_FUZZ_CHECK(curve.ok(), "a county key has no Curve key");
  const std::string curve_hex = ToHex(std::string_view(reinterpret_cast<const char*>(curve->data()), curve->size()));
  for (auto message : messages) {
    CheckRoundTrip(message);
    CheckReply(server.Handle("fuzz-peer", curve_hex, message));
    hub.clock.Advance(1000);
  }
  hub.clock.Advance(10 * 60 * 1000);
  server.Expire(5 * 60 * 1000);
  AIDSYNC_FUZZ_CHECK(server.open_sessions() == 0, "an idle session outlived Expire");
}

void RunClient(County& county, const std::vector<std::string_view>& replies) {
  WorkingNode& station = county.Fresh(NodeId::k0512);
  SyncClient client(*station.replica, county.CertificateOf(NodeId::kHub), kHubAddress, kClientSession,
                    FuzzSyncOptions());
  auto hello = client.Start();
  AIDSYNC_FUZZ_CHECK(hello.ok(), "the client cannot start: " + hello.status().ToString());
  for (auto reply : replies) {
    CheckRoundTrip(reply);
    auto next = client.OnReply(reply);
    if (!next.ok()) {
      Note("client: " + next.status().ToString());
      return;
    }
    if (!next->has_value()) break;
    auto request = DecodeMessage(**next);
    AIDSYNC_FUZZ_CHECK(request.ok() && request->version == kProtocolVersion &&
                           std::holds_alternative<PushMsg>(request->body),
                       "the client sent something other than a push");
    station.clock.Advance(1000);
  }
  if (client.complete()) Reached("client session complete");
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync;
  using namespace aidsync::fuzz;
  if (size < 1) return 0;
  County& county = County::Get();
  const auto messages = SplitParts(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  switch (data[0] % 4) {
    case 0: RunServer(county, county.KeyOf(NodeId::k0512).public_key(), messages); break;
    case 1: RunServer(county, county.KeyOf(NodeId::k0513).public_key(), messages); break;
    case 2: RunServer(county, county.stranger().public_key(), messages); break;
    default: RunClient(county, messages); break;
  }
  return 0;
}
