// Helpers shared by the in-process trust tests (invite_test, revocation_test,
// enrolment_rules_test): protocol message bodies, invite secrets and tokens,
// Curve keys, and the hub's rows as text. The cluster itself is in
// tests/cluster_fixture.h.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "crypto/invite.h"
#include "crypto/keys.h"
#include "sync/protocol.h"
#include "tests/cluster_fixture.h"

namespace aidsync::testing {

constexpr int64_t kHourMs = 3600 * 1000;

// Status `rejected`: reason -> count.
using Counts = std::map<std::string, int64_t>;

// The body of a protocol message, REQUIREd to decode and to be a T.
template <typename T>
T Body(const std::string& message) {
  auto msg = DecodeMessage(message);
  REQUIRE_OK(msg);
  REQUIRE(std::holds_alternative<T>(msg->body));
  return std::get<T>(msg->body);
}

// A fresh invite secret from `random`.
InviteSecret NewSecret(RandomSource& random);
// A copy of `secret` (InviteSecret is move-only).
InviteSecret CopyOf(const InviteSecret& secret);

// What SyncServer hands RedeemInvite: a loader of the hub's authority key.
std::function<Result<SigningKey>()> AuthorityOf(const Replica& hub);

// An invite token for `secret` naming `hub` at tcp://127.0.0.1:7700.
InviteToken TokenFor(const Replica& hub, const PublicKey& authority, const InviteSecret& secret,
                     int64_t expires_at_ms);

// The rows `sql` returns as text, one line per row: each value (NULL for a
// null) followed by '|'.
std::vector<std::string> QueryRows(Replica& r, const std::string& sql);
// The hub's invite rows: (id, name, code, scope, expires, used_by, used_at).
std::vector<std::string> Invites(Replica& hub);

// A station enrolled at the hub that also holds the hub's certificate, as the
// enrolment file gives it.
Node& Enrol(Cluster& cluster, const std::string& name, const std::string& code, const std::string& scope);

}  // namespace aidsync::testing
