// Tests for creating and opening a node (sync/replica_open.cc): what init
// does with files it finds in the data dir, and stores written by older and
// newer versions of aidsync.
#include <sqlite3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <functional>

#include "sync/packing.h"
#include "tests/cluster_fixture.h"

namespace aidsync {
namespace {

using testing::ReadFile;
using testing::WriteFile;

struct HubSetup {
  testing::TempDir tmp;
  testing::TestClock clock;
  testing::SeededRandom random{11};
  Env env;
  SigningKey authority = SigningKey::Generate(random);
  NodeConfig config;

  HubSetup() {
    env.clock = &clock;
    env.random = &random;
    config.name = testing::kHubName;
    config.code = testing::kHubCode;
    config.scope = testing::kCountyScope;
    config.role = Role::kHub;
    config.authority = authority.public_key();
  }
};

}  // namespace

// Regression: init used to delete dir/authority.key before writing its copy,
// so `--authority-key DIR/authority.key` (the user's only copy) could be lost.
TEST_CASE("replica: a hub init never deletes an authority.key it finds in the data dir", "[replica][init]") {
  HubSetup s;
  const std::string dir = s.tmp.path() + "/hub";
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);

  SECTION("another authority's key is refused and left as it was") {
    testing::SeededRandom other_random(99);
    SigningKey other = SigningKey::Generate(other_random);
    REQUIRE_OK(other.Save(AuthorityKeyPath(dir)));
    const std::string before = ReadFile(AuthorityKeyPath(dir));
    REQUIRE_CODE(Replica::Create(dir, s.config, s.env, &s.authority), Status::Code::kAlreadyExists);
    CHECK(ReadFile(AuthorityKeyPath(dir)) == before);
    REQUIRE_CODE(Replica::Open(dir, s.env), Status::Code::kNotFound);  // no node was made
  }
  SECTION("the same authority's key is kept and the hub can enrol") {
    REQUIRE_OK(s.authority.Save(AuthorityKeyPath(dir)));
    const std::string before = ReadFile(AuthorityKeyPath(dir));
    REQUIRE_OK(Replica::Create(dir, s.config, s.env, &s.authority));
    CHECK(ReadFile(AuthorityKeyPath(dir)) == before);
    auto loaded = SigningKey::Load(AuthorityKeyPath(dir));
    REQUIRE_OK(loaded);
    CHECK(loaded->public_key() == s.authority.public_key());
  }
  SECTION("without one, init writes a 0600 copy") {
    REQUIRE_OK(Replica::Create(dir, s.config, s.env, &s.authority));
    struct stat st;
    REQUIRE(::stat(AuthorityKeyPath(dir).c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
}

}  // namespace aidsync

// ---- stores written by other versions of aidsync ---------------------------

namespace aidsync {
namespace {

// Runs `edit` on the node's replica.db with its replica closed, as an older
// or newer aidsync would have left the file, then leaves it closed.
void EditStore(testing::Node& node, const std::function<void(sqlite3*)>& edit) {
  node.replica.reset();
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((node.dir + "/replica.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  edit(db);
  REQUIRE(sqlite3_close(db) == SQLITE_OK);
}

void Exec(sqlite3* db, const std::string& sql) { REQUIRE(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK); }

// A store from before issue 7 kept every envelope verbatim (docs/FORMATS.md,
// aidsync_log): this store is made into one by unpacking every envelope.
void MakeEnvelopesVerbatim(sqlite3* db) {
  std::vector<std::pair<int64_t, std::string>> rows;
  sqlite3_stmt* select = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT id, envelope FROM aidsync_log", -1, &select, nullptr) == SQLITE_OK);
  while (sqlite3_step(select) == SQLITE_ROW) {
    std::string stored(static_cast<const char*>(sqlite3_column_blob(select, 1)),
                       static_cast<size_t>(sqlite3_column_bytes(select, 1)));
    auto envelope = UnpackStoredEnvelope(stored, ChangesetLimits{}.max_envelope_bytes);
    REQUIRE_OK(envelope);
    rows.emplace_back(sqlite3_column_int64(select, 0), *envelope);
  }
  sqlite3_finalize(select);
  for (const auto& [id, envelope] : rows) {
    sqlite3_stmt* update = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "UPDATE aidsync_log SET envelope = ? WHERE id = ?", -1, &update, nullptr) ==
            SQLITE_OK);
    sqlite3_bind_blob(update, 1, envelope.data(), static_cast<int>(envelope.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(update, 2, id);
    REQUIRE(sqlite3_step(update) == SQLITE_DONE);
    sqlite3_finalize(update);
  }
}

int64_t CompressedEnvelopes(Replica& replica) {
  auto q = replica.Query("SELECT count(*) FROM aidsync_log WHERE substr(envelope, 1, 4) = x'28b52ffd'");
  REQUIRE_OK(q);
  return std::get<int64_t>(q->rows.at(0).at(0).v);
}

}  // namespace

TEST_CASE("replica: a store from before compressed log envelopes still reads, rebuilds and syncs",
          "[replica][upgrade]") {
  testing::Cluster cluster(7);
  testing::Node& station = cluster.AddStation(testing::kStationName, "0512", testing::kTownship);
  {
    auto tx = station->BeginLocal();
    REQUIRE_OK(tx);
    for (int i = 0; i < 60; ++i)
      REQUIRE_OK((*tx)->Put("consultations", std::nullopt, std::nullopt,
                            {{"channel", "walk_in"}, {"topic", "土地承包纠纷"}, {"summary", "第" + std::to_string(i) + "次来访，已答复"}}));
    REQUIRE_OK((*tx)->Commit());
  }
  // A changeset of 60 rows is stored compressed; the one-row certificate
  // changesets of enrolment may not be.
  REQUIRE(CompressedEnvelopes(*station.replica) > 0);
  const std::string before = testing::Dump(*station.replica);

  EditStore(station, [](sqlite3* db) {
    MakeEnvelopesVerbatim(db);
    Exec(db, "UPDATE aidsync_node SET value = '3' WHERE key = 'internal_version'");
  });
  cluster.Reopen(station);
  CHECK(CompressedEnvelopes(*station.replica) == 0);
  CHECK(testing::Dump(*station.replica) == before);
  auto version = station->Query("SELECT value FROM aidsync_node WHERE key = 'internal_version'");
  REQUIRE_OK(version);
  CHECK(version->rows.at(0).at(0).ToDisplay() == "5");
  REQUIRE_OK(station->Rebuild());
  CHECK(testing::Dump(*station.replica) == before);

  // New writes are stored compressed next to the old verbatim ones, and the
  // hub receives both.
  REQUIRE_OK(testing::PutRow(*station.replica, "consultations", std::nullopt,
                             {{"channel", "hotline_12348"}, {"topic", "工伤赔偿"}}));
  auto report = testing::Exchange(*station.replica, *cluster.hub());
  REQUIRE_OK(report);
  CHECK(report->rejected == 0);
  CHECK(testing::ListText(*cluster.hub(), "consultations").size() == 61);
}

namespace {

void InsertRejected(sqlite3* db, const std::string& hash, const std::string& reason, const std::string& envelope) {
  sqlite3_stmt* insert = nullptr;
  REQUIRE(sqlite3_prepare_v2(db,
                             "INSERT INTO aidsync_rejected(hash, reason, detail, envelope, received_at) "
                             "VALUES (?, ?, 'kept by an older aidsync', ?, 1)",
                             -1, &insert, nullptr) == SQLITE_OK);
  sqlite3_bind_blob(insert, 1, hash.data(), static_cast<int>(hash.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(insert, 2, reason.data(), static_cast<int>(reason.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(insert, 3, envelope.data(), static_cast<int>(envelope.size()), SQLITE_TRANSIENT);
  REQUIRE(sqlite3_step(insert) == SQLITE_DONE);
  sqlite3_finalize(insert);
}

bool AnyFileHolds(const std::string& dir, const std::string& needle) {
  for (const char* name : {"/replica.db", "/replica.db-wal", "/replica.db-shm"}) {
    struct stat st;
    if (::stat((dir + name).c_str(), &st) != 0) continue;
    if (ReadFile(dir + name).find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// Regression (red-team review): a store of version 4 kept refused changesets
// whole, another village's applicants among them. Opening it strips every
// body the node may not hold, out of the file and the WAL, and keeps what
// each says of itself.
TEST_CASE("replica: a version 4 store loses the refused bodies it may not hold and still opens",
          "[replica][upgrade][rejected]") {
  testing::Cluster cluster(9);
  testing::Node& a = cluster.AddStation("新华村联系点", "0514", "430123/05/017");
  testing::Node& t = cluster.AddStation(testing::kStationName, "0512", testing::kTownship);
  const std::string name = "东风村申请人-孙玉珍";
  auto theirs = testing::HandBuilt(cluster.KeyOf(t), "430123/05/018", TableClass::kCase, 1, std::nullopt,
                                   MakeHlc(testing::kDefaultStartMs, 1),
                                   {testing::OneRow("applications", "b-app-1", {{"applicant_name", name}})});
  const std::string mine_text = "新华村可留的记录";
  auto mine = testing::HandBuilt(cluster.KeyOf(t), "430123/05/017", TableClass::kCase, 2, theirs.id,
                                 MakeHlc(testing::kDefaultStartMs, 2),
                                 {testing::OneRow("consultations", "a-c-1", {{"topic", mine_text}})});
  const std::string prefix_name = "东风村申请人-前缀";
  auto stranger_key = SigningKey::Generate(cluster.random());
  auto unknown = testing::HandBuilt(stranger_key, "430123/05/017", TableClass::kCase, 1, std::nullopt, 1,
                                    {testing::OneRow("applications", "x-1", {{"applicant_name", prefix_name}})});

  EditStore(a, [&](sqlite3* db) {
    // The version 4 table, as an older aidsync made and filled it.
    Exec(db, "DROP TABLE aidsync_rejected");
    Exec(db, "CREATE TABLE aidsync_rejected(hash BLOB PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL, "
             "envelope BLOB NOT NULL, received_at INTEGER NOT NULL)");
    InsertRejected(db, std::string(theirs.id.view()), "not_for_this_node", theirs.envelope);
    InsertRejected(db, std::string(mine.id.view()), "broken_chain", mine.envelope);
    InsertRejected(db, std::string(unknown.id.view()), "unknown_author", unknown.envelope.substr(0, 4096));
    InsertRejected(db, std::string(32, '\x07'), "malformed", "garbage " + name);
    Exec(db, "UPDATE aidsync_node SET value = '4' WHERE key = 'internal_version'");
  });
  REQUIRE(AnyFileHolds(a.dir, name));  // the old store does hold them
  cluster.Reopen(a);
  REQUIRE(a.replica != nullptr);
  auto version = a->Query("SELECT value FROM aidsync_node WHERE key = 'internal_version'");
  REQUIRE_OK(version);
  CHECK(version->rows.at(0).at(0).ToDisplay() == "5");

  CHECK_FALSE(AnyFileHolds(a.dir, name));
  CHECK_FALSE(AnyFileHolds(a.dir, prefix_name));
  CHECK(AnyFileHolds(a.dir, mine_text));
  auto rows = a->Query("SELECT reason, envelope IS NULL, scope, seq FROM aidsync_rejected ORDER BY reason");
  REQUIRE_OK(rows);
  REQUIRE(rows->rows.size() == 4);
  // broken_chain, malformed, not_for_this_node, unknown_author
  CHECK(rows->rows[0][1] == Value::Integer(0));
  CHECK(rows->rows[0][2] == Value::Text("430123/05/017"));
  CHECK(rows->rows[1][1] == Value::Integer(1));
  CHECK(rows->rows[1][2].is_null());
  CHECK(rows->rows[2][1] == Value::Integer(1));
  CHECK(rows->rows[2][2] == Value::Text("430123/05/018"));
  CHECK(rows->rows[2][3] == Value::Integer(1));
  CHECK(rows->rows[3][1] == Value::Integer(1));
  // The node still works: it refuses, counts and writes as before.
  REQUIRE_OK(testing::PutRow(*a.replica, "consultations", std::nullopt, {{"topic", "升级之后"}}));
  auto again = a->ApplyRemote({theirs.envelope});
  REQUIRE_OK(again);
  CHECK(again->rejected == 1);
}

TEST_CASE("replica: a store written by a newer aidsync is refused, not misread", "[replica][upgrade]") {
  testing::Cluster cluster(8);
  testing::Node& station = cluster.AddStation(testing::kStationName, "0512", testing::kTownship);
  EditStore(station, [](sqlite3* db) { Exec(db, "UPDATE aidsync_node SET value = '99' WHERE key = 'internal_version'"); });
  for (bool read_only : {false, true}) {
    INFO("read_only " << read_only);
    OpenOptions options;
    options.read_only = read_only;
    auto opened = Replica::Open(station.dir, station.env, options);
    REQUIRE_CODE(opened, Status::Code::kInvalidArgument);
    CHECK(opened.status().message().find("newer aidsync") != std::string::npos);
  }
}

}  // namespace aidsync
