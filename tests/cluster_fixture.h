// Test helpers for the replica core: a settable clock and a small cluster (a
// hub and enrolled stations) whose nodes exchange changesets in process, the
// way a sync session or a bundle would. TempDir and SeededRandom are in
// tests/test_support.h.
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/env.h"
#include "base/status.h"
#include "crypto/certificate.h"
#include "crypto/keys.h"
#include "sync/changeset.h"
#include "sync/local_write.h"
#include "sync/replica.h"
#include "sync/sync_session.h"
#include "tests/test_support.h"

namespace aidsync::testing {

inline std::string StatusText(const Status& s) { return s.ToString(); }
template <typename T>
std::string StatusText(const Result<T>& r) {
  return r.status().ToString();
}

// REQUIRE that a Status or Result is ok, printing the status when it is not.
#define REQUIRE_OK(expr)                                       \
  do {                                                         \
    const auto& _aidsync_r = (expr);                           \
    INFO(::aidsync::testing::StatusText(_aidsync_r));          \
    REQUIRE(_aidsync_r.ok());                                  \
  } while (0)

// REQUIRE that a Status or Result failed with `code`.
#define REQUIRE_CODE(expr, code)                               \
  do {                                                         \
    const auto& _aidsync_r = (expr);                           \
    INFO(::aidsync::testing::StatusText(_aidsync_r));          \
    REQUIRE(::aidsync::testing::CodeOf(_aidsync_r) == (code)); \
  } while (0)

inline Status::Code CodeOf(const Status& s) { return s.code(); }
template <typename T>
Status::Code CodeOf(const Result<T>& r) {
  return r.status().code();
}

// 2024-06-15 12:00:00 UTC: mid-year in every time zone.
constexpr int64_t kDefaultStartMs = 1718452800000;

// A wall clock the test sets and advances. Thread-safe.
class TestClock final : public Clock {
 public:
  explicit TestClock(int64_t now_ms = kDefaultStartMs) : now_(now_ms) {}
  int64_t NowMillis() override { return now_.load(); }
  void Set(int64_t ms) { now_.store(ms); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// One node of a cluster: its data dir, its own wall clock and its replica.
struct Node {
  std::string dir;
  std::unique_ptr<TestClock> clock;
  Env env;
  std::unique_ptr<Replica> replica;
  Replica* operator->() { return replica.get(); }
  Replica& operator*() { return *replica; }
};

constexpr const char* kCountyScope = "430123";
constexpr const char* kHubCode = "0500";
constexpr const char* kHubName = "县法律援助中心";

// A county: the authority key, a hub at "430123" (code 0500) and stations
// added with AddStation. Setup failures fail the running test case.
class Cluster {
 public:
  explicit Cluster(uint64_t seed = 1, int64_t start_ms = kDefaultStartMs);

  Node& hub() { return *nodes_.front(); }
  // Creates a station, has the authority certify it and installs the
  // certificate; when `enrol_at_hub`, the hub records it (stations row and
  // trust store) as enrolment does.
  Node& AddStation(const std::string& name, const std::string& code, const std::string& scope,
                   bool enrol_at_hub = true);
  // A node's certificate as issued at enrolment.
  const Certificate& CertificateOf(const Node& node) const;
  // The node's private identity key, read from its data dir.
  SigningKey KeyOf(const Node& node) const;
  // Reopens a node's replica (a fresh Replica::Open on the same data dir).
  void Reopen(Node& node);

  const SigningKey& authority() const { return authority_; }
  SeededRandom& random() { return random_; }
  const std::string& root() const { return dir_.path(); }
  std::vector<std::unique_ptr<Node>>& nodes() { return nodes_; }

 private:
  Node& NewNode(int64_t start_ms);

  TempDir dir_;
  SeededRandom random_;
  SigningKey authority_;
  int64_t start_ms_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::pair<const Node*, Certificate>> certs_;
};

// Copies a node's data dir to `to` (replacing what is there) while its replica
// is closed, as a backup or a stolen disk would, then reopens the node.
void CopyDataDir(Cluster& cluster, Node& node, const std::string& to);
// Opens a copy of a node's data dir as another node: its own clock at
// `now_ms`, the cluster's random source.
Node OpenCopy(Cluster& cluster, const std::string& dir, int64_t now_ms = kDefaultStartMs);

// What `to` may receive from `from`: first `from`'s certificates, then every
// changeset `from` holds that `to`'s scope may see, in `from`'s log order,
// applied in one batch. Returns the apply report.
Result<ApplyReport> Exchange(Replica& from, Replica& to);
// Exchange both ways, `a` to `b` first.
void ExchangeBoth(Replica& a, Replica& b);

// Every envelope in `replica`'s log that a node at `scope` may see, in log order.
std::vector<std::string> EnvelopesVisibleTo(Replica& replica, const std::string& scope);
// The envelopes `replica` authored itself, in log order.
std::vector<std::string> OwnEnvelopes(Replica& replica);

// Canonical text of every replicated table (List of each table of schema()).
std::string DumpTables(Replica& replica);
// Canonical text of Conflicts(): table, id, column, winner and losers with
// value, author name, author key, time and changeset id.
std::string DumpConflicts(Replica& replica);
// Both of the above.
std::string Dump(Replica& replica);

// Rows of `table` as text, one per row.
std::vector<std::string> ListText(Replica& replica, const std::string& table);
// The value of `column` of row `id`, or nullopt if the row is absent.
std::optional<Value> Field(Replica& replica, const std::string& table, const std::string& id,
                           const std::string& column);

using TextValues = std::vector<std::pair<std::string, std::string>>;

// One local transaction with one Put; returns the row id or the first failure
// (of BeginLocal, Put or Commit).
Result<std::string> PutRow(Replica& replica, const std::string& table, std::optional<std::string> id,
                           const TextValues& values, std::optional<std::string> scope = std::nullopt);
// Same, returning the CommitSummary as well.
Result<CommitSummary> PutRowSummary(Replica& replica, const std::string& table, std::optional<std::string> id,
                                    const TextValues& values, std::string* out_id = nullptr,
                                    std::optional<std::string> scope = std::nullopt);
// One local transaction with one Delete.
Status DeleteRow(Replica& replica, const std::string& table, const std::string& id);

int64_t TotalChangesets(Replica& replica);

// ---- helpers shared by the replica test files (replica_test,
// replica_apply_test, merge_test, domain_rules_test) ----

constexpr const char* kTownship = "430123/05";
constexpr const char* kStationName = "城关镇工作站";

// Everything a refused write must leave untouched: tables, conflicts and the
// number of changesets in the log.
std::string Snapshot(Replica& r);
// The display text of a field, or nullopt if the row is absent.
std::optional<std::string> TextField(Replica& r, const std::string& table, const std::string& id,
                                     const std::string& column);
// Whether some line contains `a` and `b`.
bool Mentions(const std::vector<std::string>& lines, const std::string& a, const std::string& b = "");
// GetStatus(), REQUIREd ok.
ReplicaStatus StatusOf(Replica& r);

// A changeset built by hand, for inputs a well-behaved node never produces.
SignedChangeset HandBuilt(const SigningKey& key, const std::string& scope, TableClass cls, uint64_t seq,
                          std::optional<Digest> prev, uint64_t hlc, std::vector<TableOpsList> tables);
// One table op writing text columns of one new row.
TableOpsList OneRow(const std::string& table, const std::string& id, const TextValues& values);
// The HLC and the id of a valid envelope.
uint64_t HlcOf(const std::string& envelope);
Digest IdOf(const std::string& envelope);

// The hub's lawyer roster for rule tests (written at the hub; send it down
// with Exchange).
struct Roster {
  std::string senior, junior, intern, assistant, grassroots;
};
Roster MakeRoster(Replica& hub);

// ---- sync sessions in process (no sockets) ----

// How RunSession drives a session.
struct SessionOptions {
  SyncOptions sync;
  // Messages (requests and replies) delivered before the link is cut, as if
  // the cable were pulled; -1 never cuts. 1 delivers only the Hello, 3 the
  // Hello, Welcome and first Push (the server applied it; its reply is lost).
  int cut_after = -1;
  std::string connection = "conn-1";
  uint64_t session_id = 0;       // 0: a fresh id from a counter
  SyncServer* server = nullptr;  // null: a SyncServer made for this session
  // The certificate the client expects the server to answer with; default:
  // the client's trusted certificate of the server's key, else its hub's.
  std::optional<Certificate> server_certificate;
  bool keep_messages = false;    // fill SessionRun::requests / replies
};

// What happened in one session.
struct SessionRun {
  Status status;             // OK, or the client's failure (or a setup failure)
  bool complete = false;     // the client finished with both sides up to date
  bool cut = false;          // the link was cut by SessionOptions::cut_after
  int round_trips = 0;       // replies delivered to the client
  int64_t request_bytes = 0; // delivered to the server
  int64_t reply_bytes = 0;   // delivered to the client
  int64_t wire_bytes() const { return request_bytes + reply_bytes; }
  int64_t changesets_pushed = 0;    // in requests delivered to the server
  int64_t changesets_returned = 0;  // in replies delivered to the client
  bool up_to_date = false;   // the Welcome said the digests agree
  SessionStats client;       // the client's own counters
  std::vector<std::string> requests, replies;  // with keep_messages
};

// Runs a SyncClient on `client` against a SyncServer on `server`, back to
// back: Start, then each request through SyncServer::Handle and each reply
// through SyncClient::OnReply until the client is done, fails, or the link
// is cut.
SessionRun RunSession(Replica& client, Replica& server, const SessionOptions& options = {});

// The Curve key (64 hex) of `replica`'s identity, as the transport's ZAP
// handler tags a connection made with it: what SyncServer::Handle is given.
std::string CurveKeyHex(const Replica& replica);
// The Curve key (32 raw bytes / 64 hex) derived from an ed25519 key.
std::string CurveRaw(const PublicKey& key);
std::string CurveHex(const PublicKey& key);
// The server's certificate as the client would find it: CertificateByKey,
// else HubCertificate (nullopt when the client knows neither).
std::optional<Certificate> ServerCertificateFor(Replica& client, Replica& server);
// Changesets carried by one protocol message (a Push or a Batch; 0 for any
// other or an undecodable one).
int64_t ChangesetsInMessage(std::string_view message);
// Sum of GetStatus().rejected.
int64_t RejectedTotal(Replica& replica);

}  // namespace aidsync::testing
