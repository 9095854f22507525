// Fuzz target `invite`: network enrolment by invite (DESIGN 6): the token a
// new station is given (crypto/invite.h DecodeInviteToken, under its parse
// limits), the join request the hub receives (a JoinMsg through
// SyncServer::Handle, then Replica::RedeemInvite on the hub of
// tests/fuzz/fuzz_county.h, which holds one live and one expired invite), and
// the reply the joining station receives (JoinClient). Tokens are pasted
// from chat messages; join requests come from anyone who can reach the port.
//
// Input: byte 0 chooses the mode (mod 4); the rest is:
//   0  an invite token (text)
//   1  join messages joined by kPartSeparator, each sent on a connection
//      made with the key it names (CurveZMQ proves that much)
//   2  join attempts, 3 bytes each: [invite: live, expired, zero, or 32 more
//      input bytes] [key: joiner A, joiner B, 0512, revoked 0514, stranger,
//      hub] [flags: bit 0 signs with the wrong key; bits 1-7 move the hub's
//      clock that many hours first], each proof signed as JoinClient would
//   3  the hub's reply to joiner A's JoinClient holding the live token
//
// Checked per input: a token that decodes re-encodes to a token that decodes
// to the same fields; every reply of the hub decodes and is Enrolled or
// Refused; an Enrolled reply carries a certificate of the county authority
// for the key that joined, with the code and scope of the invite; and no
// invite ever enrols two different keys.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() {
  return {"token decoded", "station enrolled", "join refused", "join client accepted enrolment"};
}

namespace {

void CheckToken(std::string_view text) {
  auto token = DecodeInviteToken(text);
  if (!token.ok()) return;
  Reached("token decoded");
  auto again = DecodeInviteToken(EncodeInviteToken(*token));
  AIDSYNC_FUZZ_CHECK(again.ok(), "a re-encoded token does not decode: " + again.status().ToString());
  AIDSYNC_FUZZ_CHECK(again->address == token->address && again->hub_key == token->hub_key &&
                         again->authority == token->authority && again->secret.bytes == token->secret.bytes &&
                         again->expires_at_ms == token->expires_at_ms,
                     "a token changes on a decode/encode round trip");
}

std::string CurveHex(const PublicKey& key) {
  auto curve = DeriveCurvePublic(key);
  if (!curve.ok()) return std::string(64, '0');
  return ToHex(std::string_view(reinterpret_cast<const char*>(curve->data()), curve->size()));
}

// Which key each invite (by secret) enrolled: at most one per invite.
class EnrolmentLedger {
 public:
  EnrolmentLedger(County& county) : county_(county) {}

  // Checks one reply of the hub to a join with `secret` by `key`.
  void Check(const std::string& reply, const InviteSecret& secret, const PublicKey& key) {
    auto msg = DecodeMessage(reply);
    AIDSYNC_FUZZ_CHECK(msg.ok() && msg->version == kProtocolVersion, "the hub sent an undecodable reply");
    if (auto* refused = std::get_if<RefusedMsg>(&msg->body)) {
      Reached("join refused");
      Note("join refused: " + refused->reason);
      return;
    }
    auto* enrolled = std::get_if<EnrolledMsg>(&msg->body);
    AIDSYNC_FUZZ_CHECK(enrolled != nullptr, "the hub answered a join with neither Enrolled nor Refused");
    Reached("station enrolled");
    auto cert = Certificate::Parse(enrolled->certificate, county_.authority().public_key());
    AIDSYNC_FUZZ_CHECK(cert.ok(), "the hub enrolled with a certificate that does not verify");
    AIDSYNC_FUZZ_CHECK(cert->fields().node_key == key, "the hub certified a key other than the joiner's");
    const bool live = secret.bytes == county_.live_invite().bytes;
    AIDSYNC_FUZZ_CHECK(live, "the hub enrolled a station on an invite it never made live");
    AIDSYNC_FUZZ_CHECK(cert->fields().code == "0515" && cert->fields().scope == "430123/05/018",
                       "the certificate does not carry the invite's code and scope");
    auto [it, fresh] = enrolled_by_.emplace(std::string(secret.view()), key);
    AIDSYNC_FUZZ_CHECK(fresh || it->second == key, "one invite enrolled two different keys");
  }

 private:
  County& county_;
  std::map<std::string, PublicKey> enrolled_by_;
};

void SendJoinMessages(County& county, const std::vector<std::string_view>& messages) {
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  SyncServer server(*hub.replica, FuzzSyncOptions());
  EnrolmentLedger ledger(county);
  for (auto message : messages) {
    auto decoded = DecodeMessage(message);
    const JoinMsg* join = decoded.ok() ? std::get_if<JoinMsg>(&decoded->body) : nullptr;
    const PublicKey key = join ? join->node_key : county.joiner(0).public_key();
    const std::string reply = server.Handle("joiner", CurveHex(key), message);
    InviteSecret secret;
    if (join) secret.bytes = join->secret.bytes;
    if (join && decoded->version == kProtocolVersion) {
      ledger.Check(reply, secret, key);
    } else {
      auto msg = DecodeMessage(reply);
      AIDSYNC_FUZZ_CHECK(msg.ok() && std::holds_alternative<RefusedMsg>(msg->body),
                         "the hub answered a non-join without a refusal");
    }
  }
}

void AttemptJoins(County& county, std::string_view script) {
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  SyncServer server(*hub.replica, FuzzSyncOptions());
  EnrolmentLedger ledger(county);
  const SigningKey* keys[] = {&county.joiner(0),           &county.joiner(1),          &county.KeyOf(NodeId::k0512),
                              &county.KeyOf(NodeId::k0514), &county.stranger(),         &county.KeyOf(NodeId::kHub)};
  ByteReader in(script);
  for (uint64_t session = 1; !in.empty() && session <= 64; ++session) {
    JoinMsg join;
    switch (in.Byte() % 4) {
      case 0: join.secret.bytes = county.live_invite().bytes; break;
      case 1: join.secret.bytes = county.expired_invite().bytes; break;
      case 2: break;
      default:
        for (auto& b : join.secret.bytes) b = in.Byte();
    }
    const SigningKey& key = *keys[in.Byte() % std::size(keys)];
    const uint8_t flags = in.Byte();
    hub.clock.Advance(static_cast<int64_t>(flags >> 1) * 3600 * 1000);
    join.node_key = key.public_key();
    const SigningKey& signer = flags & 1 ? county.stranger() : key;
    join.signature = signer.SignDigest(JoinProofDigest(join.secret, join.node_key));
    InviteSecret secret;
    secret.bytes = join.secret.bytes;
    const std::string reply =
        server.Handle("joiner", CurveHex(key.public_key()), EncodeMessage({kProtocolVersion, session, std::move(join)}));
    ledger.Check(reply, secret, key.public_key());
  }
}

void ReplyToJoinClient(County& county, std::string_view reply) {
  auto token = DecodeInviteToken(county.live_token());
  AIDSYNC_FUZZ_CHECK(token.ok(), "the county's own token does not decode");
  JoinClient client(county.joiner(0), *token, kClientSession);
  AIDSYNC_FUZZ_CHECK(client.Start().ok(), "the join client cannot start");
  auto done = client.OnReply(reply);
  if (!done.ok()) return;
  AIDSYNC_FUZZ_CHECK(!done->has_value(), "a join takes one exchange");
  Reached("join client accepted enrolment");
  auto cert = Certificate::Parse(client.enrolled().certificate, token->authority);
  AIDSYNC_FUZZ_CHECK(cert.ok() && cert->fields().node_key == county.joiner(0).public_key(),
                     "the join client accepted a certificate for another key");
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync::fuzz;
  if (size < 1) return 0;
  County& county = County::Get();
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: CheckToken(rest); break;
    case 1: SendJoinMessages(county, SplitParts(rest)); break;
    case 2: AttemptJoins(county, rest); break;
    default: ReplyToJoinClient(county, rest); break;
  }
  return 0;
}
