#include "tests/cluster_fixture.h"

#include "sync/packing.h"

#include <filesystem>
#include <memory>
#include <sstream>

namespace aidsync::testing {

Cluster::Cluster(uint64_t seed, int64_t start_ms)
    : random_(seed), authority_(SigningKey::Generate(random_)), start_ms_(start_ms) {
  Node& hub = NewNode(start_ms);
  NodeConfig config;
  config.name = kHubName;
  config.code = kHubCode;
  config.scope = kCountyScope;
  config.role = Role::kHub;
  config.authority = authority_.public_key();
  REQUIRE_OK(Replica::Create(hub.dir, config, hub.env, &authority_));
  auto opened = Replica::Open(hub.dir, hub.env);
  REQUIRE_OK(opened);
  hub.replica = std::move(opened).value();
  auto cert = hub.replica->CertificateByKey(hub.replica->identity().key);
  REQUIRE_OK(cert);
  REQUIRE(cert->has_value());
  certs_.emplace_back(&hub, **cert);
}

Node& Cluster::NewNode(int64_t start_ms) {
  auto node = std::make_unique<Node>();
  node->dir = dir_.path() + "/node" + std::to_string(nodes_.size());
  node->clock = std::make_unique<TestClock>(start_ms);
  node->env.clock = node->clock.get();
  node->env.random = &random_;
  nodes_.push_back(std::move(node));
  return *nodes_.back();
}

Node& Cluster::AddStation(const std::string& name, const std::string& code, const std::string& scope,
                          bool enrol_at_hub) {
  Node& node = NewNode(start_ms_);
  NodeConfig config;
  config.name = name;
  config.code = code;
  config.scope = scope;
  config.role = Role::kStation;
  config.authority = authority_.public_key();
  auto key = Replica::Create(node.dir, config, node.env);
  REQUIRE_OK(key);
  auto opened = Replica::Open(node.dir, node.env);
  REQUIRE_OK(opened);
  node.replica = std::move(opened).value();

  CertificateFields fields;
  fields.node_key = *key;
  fields.name = name;
  fields.code = code;
  fields.role = Role::kStation;
  fields.scope = scope;
  fields.issued_at_ms = node.clock->NowMillis();
  auto cert = Certificate::Issue(fields, authority_);
  REQUIRE_OK(cert);
  REQUIRE_OK(node.replica->InstallOwnCertificate(cert->bytes()));
  if (enrol_at_hub) REQUIRE_OK(hub()->RecordStation(*cert));
  certs_.emplace_back(&node, *cert);
  return node;
}

const Certificate& Cluster::CertificateOf(const Node& node) const {
  for (const auto& [n, cert] : certs_)
    if (n == &node) return cert;
  FAIL("node has no certificate");
  return certs_.front().second;
}

SigningKey Cluster::KeyOf(const Node& node) const {
  auto key = SigningKey::Load(node.dir + "/node.key");
  REQUIRE_OK(key);
  return std::move(key).value();
}

void Cluster::Reopen(Node& node) {
  node.replica.reset();
  auto opened = Replica::Open(node.dir, node.env);
  REQUIRE_OK(opened);
  node.replica = std::move(opened).value();
}

void CopyDataDir(Cluster& cluster, Node& node, const std::string& to) {
  node.replica.reset();
  std::filesystem::remove_all(to);
  std::filesystem::copy(node.dir, to, std::filesystem::copy_options::recursive);
  std::filesystem::permissions(to, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  cluster.Reopen(node);
}

Node OpenCopy(Cluster& cluster, const std::string& dir, int64_t now_ms) {
  Node node;
  node.dir = dir;
  node.clock = std::make_unique<TestClock>(now_ms);
  node.env.clock = node.clock.get();
  node.env.random = &cluster.random();
  auto opened = Replica::Open(dir, node.env);
  REQUIRE_OK(opened);
  node.replica = std::move(opened).value();
  return node;
}

Result<ApplyReport> Exchange(Replica& from, Replica& to) {
  ASSIGN_OR_RETURN(std::vector<std::string> certs, from.CertificatesVisibleTo(to.identity().scope));
  for (const auto& cert : certs) RETURN_IF_ERROR(to.AddCertificate(cert).status());
  std::vector<std::string> batch = EnvelopesVisibleTo(from, to.identity().scope);
  return to.ApplyRemote(batch);
}

void ExchangeBoth(Replica& a, Replica& b) {
  auto ab = Exchange(a, b);
  REQUIRE_OK(ab);
  CHECK(ab->rejected == 0);
  auto ba = Exchange(b, a);
  REQUIRE_OK(ba);
  CHECK(ba->rejected == 0);
}

std::vector<std::string> EnvelopesVisibleTo(Replica& replica, const std::string& scope) {
  std::vector<std::string> out;
  REQUIRE_OK(replica.ForEachChangesetVisibleTo(scope, [&](std::string_view envelope) {
    out.emplace_back(envelope);
    return Status::OK();
  }));
  return out;
}

std::vector<std::string> OwnEnvelopes(Replica& replica) {
  auto result = replica.Query("SELECT hex(envelope) FROM aidsync_log WHERE author = x'" +
                              replica.identity().key.Hex() + "' ORDER BY id");
  REQUIRE_OK(result);
  std::vector<std::string> out;
  for (const auto& row : result->rows) {
    auto bytes = FromHex(row.at(0).ToDisplay());
    REQUIRE_OK(bytes);
    auto envelope = UnpackStoredEnvelope(*bytes, ChangesetLimits{}.max_envelope_bytes);  // the log's stored form
    REQUIRE_OK(envelope);
    out.push_back(*envelope);
  }
  return out;
}

namespace {

std::string ValueText(const Value& v) {
  if (v.is_null()) return "NULL";
  if (std::holds_alternative<int64_t>(v.v)) return "i:" + v.ToDisplay();
  if (std::holds_alternative<double>(v.v)) return "r:" + v.ToDisplay();
  return "'" + v.ToDisplay() + "'";
}

std::string RowText(const Row& row) {
  std::string out;
  for (const auto& [column, value] : row) out += (out.empty() ? "" : " ") + column + "=" + ValueText(value);
  return out;
}

std::string VersionText(const ConflictVersion& v) {
  return ValueText(v.value) + " by " + v.author + " [" + v.author_key.substr(0, 12) + "] at " +
         std::to_string(v.time_ms) + " cs " + v.changeset.substr(0, 12);
}

}  // namespace

std::vector<std::string> ListText(Replica& replica, const std::string& table) {
  auto rows = replica.List(table);
  REQUIRE_OK(rows);
  std::vector<std::string> out;
  for (const auto& row : *rows) out.push_back(RowText(row));
  return out;
}

std::string DumpTables(Replica& replica) {
  std::ostringstream out;
  for (const auto& table : replica.schema().tables) {
    out << "[" << table.name << "]\n";
    for (const auto& line : ListText(replica, table.name)) out << line << "\n";
  }
  return out.str();
}

std::string DumpConflicts(Replica& replica) {
  auto conflicts = replica.Conflicts();
  REQUIRE_OK(conflicts);
  std::ostringstream out;
  for (const auto& c : *conflicts) {
    out << c.table << "/" << c.id << "." << c.column << (c.row_deleted ? " (row deleted)" : "") << "\n";
    if (c.winner) out << "  winner " << VersionText(*c.winner) << "\n";
    for (const auto& loser : c.losers) out << "  loser  " << VersionText(loser) << "\n";
  }
  return out.str();
}

std::string Dump(Replica& replica) { return DumpTables(replica) + "[conflicts]\n" + DumpConflicts(replica); }

std::optional<Value> Field(Replica& replica, const std::string& table, const std::string& id,
                           const std::string& column) {
  auto row = replica.Get(table, id);
  REQUIRE_OK(row);
  if (!row->has_value()) return std::nullopt;
  for (const auto& [name, value] : **row)
    if (name == column) return value;
  FAIL("no column " << column << " in " << table);
  return std::nullopt;
}

Result<CommitSummary> PutRowSummary(Replica& replica, const std::string& table, std::optional<std::string> id,
                                    const TextValues& values, std::string* out_id,
                                    std::optional<std::string> scope) {
  ASSIGN_OR_RETURN(auto tx, replica.BeginLocal());
  ASSIGN_OR_RETURN(std::string row_id, tx->Put(table, std::move(id), std::move(scope), values));
  if (out_id) *out_id = row_id;
  return tx->Commit();
}

Result<std::string> PutRow(Replica& replica, const std::string& table, std::optional<std::string> id,
                           const TextValues& values, std::optional<std::string> scope) {
  std::string row_id;
  ASSIGN_OR_RETURN(CommitSummary summary, PutRowSummary(replica, table, std::move(id), values, &row_id,
                                                        std::move(scope)));
  (void)summary;
  return row_id;
}

Status DeleteRow(Replica& replica, const std::string& table, const std::string& id) {
  ASSIGN_OR_RETURN(auto tx, replica.BeginLocal());
  RETURN_IF_ERROR(tx->Delete(table, id));
  return tx->Commit().status();
}

int64_t TotalChangesets(Replica& replica) {
  auto status = replica.GetStatus();
  REQUIRE_OK(status);
  return status->total_changesets;
}

std::string Snapshot(Replica& r) {
  return Dump(r) + "[log]\n" + std::to_string(TotalChangesets(r)) + "\n";
}

std::optional<std::string> TextField(Replica& r, const std::string& table, const std::string& id,
                                     const std::string& column) {
  auto v = Field(r, table, id, column);
  if (!v) return std::nullopt;
  return v->ToDisplay();
}

bool Mentions(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
  for (const auto& line : lines)
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
  return false;
}

ReplicaStatus StatusOf(Replica& r) {
  auto s = r.GetStatus();
  REQUIRE_OK(s);
  return *s;
}

SignedChangeset HandBuilt(const SigningKey& key, const std::string& scope, TableClass cls, uint64_t seq,
                          std::optional<Digest> prev, uint64_t hlc, std::vector<TableOpsList> tables) {
  ChangesetContent c;
  c.author = key.public_key();
  c.scope = scope;
  c.cls = cls;
  c.seq = seq;
  c.prev = prev;
  c.hlc = hlc;
  c.schema_version = 1;
  c.tables = std::move(tables);
  auto signed_cs = SignChangeset(c, key);
  REQUIRE_OK(signed_cs);
  return *signed_cs;
}

TableOpsList OneRow(const std::string& table, const std::string& id, const TextValues& values) {
  TableOpsList ops{table, {}, {}};
  RowOp row{id, false, {}};
  for (const auto& [column, text] : values) {
    row.fields.push_back(FieldWriteOp{static_cast<uint16_t>(ops.columns.size()), {}, false, Value::Text(text)});
    ops.columns.push_back(column);
  }
  ops.rows.push_back(row);
  return ops;
}

uint64_t HlcOf(const std::string& envelope) {
  Digest id;
  auto c = DecodeChangeset(envelope, &id);
  REQUIRE_OK(c);
  return c->hlc;
}

Digest IdOf(const std::string& envelope) {
  Digest id;
  REQUIRE_OK(DecodeChangeset(envelope, &id));
  return id;
}

Roster MakeRoster(Replica& hub) {
  Roster r;
  auto put = [&](const std::string& name, const std::string& kind, const std::string& years) {
    auto id = PutRow(hub, "lawyers", std::nullopt,
                     {{"name", name}, {"firm", "湘法律师事务所"}, {"kind", kind}, {"practice_years", years},
                      {"active", "1"}});
    REQUIRE_OK(id);
    return *id;
  };
  r.senior = put("李律师", "lawyer", "5");
  r.junior = put("张律师", "lawyer", "2");
  r.intern = put("实习生", "intern", "1");
  r.assistant = put("助理", "assistant", "4");
  r.grassroots = put("基层法律工作者", "grassroots", "10");
  return r;
}

std::optional<Certificate> ServerCertificateFor(Replica& client, Replica& server) {
  auto by_key = client.CertificateByKey(server.identity().key);
  REQUIRE_OK(by_key);
  if (by_key->has_value()) return **by_key;
  if (server.identity().role == Role::kHub) {
    auto hub = client.HubCertificate();
    REQUIRE_OK(hub);
    if (hub->has_value() && (*hub)->fields().node_key == server.identity().key) return **hub;
  }
  return std::nullopt;
}

namespace {

// Changesets carried by one protocol message (0 for an undecodable one).
int64_t ChangesetsIn(std::string_view bytes, bool* up_to_date = nullptr) {
  auto msg = DecodeMessage(bytes);
  if (!msg.ok()) return 0;
  if (auto* push = std::get_if<PushMsg>(&msg->body)) return static_cast<int64_t>(push->changesets.size());
  if (auto* batch = std::get_if<BatchMsg>(&msg->body)) return static_cast<int64_t>(batch->changesets.size());
  if (auto* welcome = std::get_if<WelcomeMsg>(&msg->body); welcome && up_to_date)
    *up_to_date = welcome->up_to_date;
  return 0;
}

std::atomic<uint64_t> next_session_id{1000};

}  // namespace

int64_t ChangesetsInMessage(std::string_view message) { return ChangesetsIn(message); }

SessionRun RunSession(Replica& client_replica, Replica& server_replica, const SessionOptions& options) {
  SessionRun run;
  std::optional<Certificate> cert = options.server_certificate;
  if (!cert) cert = ServerCertificateFor(client_replica, server_replica);
  if (!cert) {
    run.status = Status::NotFound("the client knows no certificate of " + server_replica.identity().name);
    return run;
  }
  std::optional<SyncServer> own_server;
  SyncServer* server = options.server;
  if (server == nullptr) server = &own_server.emplace(server_replica, options.sync);
  uint64_t session = options.session_id != 0 ? options.session_id : next_session_id.fetch_add(1);
  SyncClient client(client_replica, *cert, "inproc", session, options.sync);

  auto first = client.Start();
  if (!first.ok()) {
    run.status = first.status();
    return run;
  }
  std::string request = std::move(first).value();
  int delivered = 0;
  auto link_up = [&] {
    if (options.cut_after >= 0 && delivered >= options.cut_after) run.cut = true;
    return !run.cut;
  };
  while (link_up()) {
    std::string reply = server->Handle(options.connection, CurveKeyHex(client_replica), request);
    ++delivered;
    run.request_bytes += static_cast<int64_t>(request.size());
    run.changesets_pushed += ChangesetsIn(request);
    if (options.keep_messages) run.requests.push_back(request);
    if (!link_up()) break;
    ++delivered;
    ++run.round_trips;
    run.reply_bytes += static_cast<int64_t>(reply.size());
    run.changesets_returned += ChangesetsIn(reply, &run.up_to_date);
    if (options.keep_messages) run.replies.push_back(reply);
    auto next = client.OnReply(reply);
    if (!next.ok()) {
      run.status = next.status();
      break;
    }
    if (!next->has_value()) break;
    request = std::move(**next);
    if (run.round_trips > 100000) {
      run.status = Status::Corruption("the session does not end");
      break;
    }
  }
  run.complete = client.complete();
  run.client = client.stats();
  return run;
}

int64_t RejectedTotal(Replica& replica) {
  int64_t total = 0;
  for (const auto& [reason, n] : StatusOf(replica).rejected) total += n;
  return total;
}

}  // namespace aidsync::testing

namespace aidsync::testing {

std::string CurveRaw(const PublicKey& key) {
  auto curve = DeriveCurvePublic(key);
  REQUIRE_OK(curve);
  return std::string(reinterpret_cast<const char*>(curve->data()), curve->size());
}

std::string CurveHex(const PublicKey& key) { return ToHex(CurveRaw(key)); }

std::string CurveKeyHex(const Replica& replica) { return CurveHex(replica.identity().key); }

}  // namespace aidsync::testing
