#include "tests/trust_fixture.h"

namespace aidsync::testing {

InviteSecret NewSecret(RandomSource& random) {
  InviteSecret s;
  random.Fill(s.bytes.data(), s.bytes.size());
  return s;
}

InviteSecret CopyOf(const InviteSecret& secret) {
  InviteSecret s;
  s.bytes = secret.bytes;
  return s;
}

std::function<Result<SigningKey>()> AuthorityOf(const Replica& hub) {
  const std::string dir = hub.dir();
  return [dir] { return SigningKey::Load(AuthorityKeyPath(dir)); };
}

InviteToken TokenFor(const Replica& hub, const PublicKey& authority, const InviteSecret& secret,
                     int64_t expires_at_ms) {
  InviteToken t;
  t.address = "tcp://127.0.0.1:7700";
  t.hub_key = hub.identity().key;
  t.authority = authority;
  t.secret = CopyOf(secret);
  t.expires_at_ms = expires_at_ms;
  return t;
}


std::vector<std::string> QueryRows(Replica& r, const std::string& sql) {
  auto q = r.Query(sql);
  REQUIRE_OK(q);
  std::vector<std::string> out;
  for (const auto& row : q->rows) {
    std::string line;
    for (const auto& v : row) line += (v.is_null() ? std::string("NULL") : v.ToDisplay()) + "|";
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> Invites(Replica& hub) {
  return QueryRows(hub,
                   "SELECT lower(hex(id)), name, code, scope, expires_at, lower(hex(used_by)), used_at "
                   "FROM aidsync_invites ORDER BY id");
}

Node& Enrol(Cluster& cluster, const std::string& name, const std::string& code, const std::string& scope) {
  Node& node = cluster.AddStation(name, code, scope);
  REQUIRE_OK(node->AddCertificate(cluster.CertificateOf(cluster.hub()).bytes()));
  return node;
}

}  // namespace aidsync::testing
