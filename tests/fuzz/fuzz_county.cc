// The fuzz targets' county: built once per process through the product's API
// from a fixed seed (see fuzz_county.h for what it holds and why it must be
// deterministic).
#include "tests/fuzz/fuzz_county.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "sync/local_write.h"

namespace aidsync::fuzz {
namespace {

// Changing the seed changes every key and signature: regenerate the corpus.
constexpr uint64_t kCountySeed = 20240615;
constexpr int64_t kDayMs = 24 * 3600 * 1000;
constexpr int64_t kBuildStartMs = kNowMs - 10 * kDayMs;

const char* const kNodeDirs[kNodeCount] = {"hub-0500", "station-0512", "station-0513", "station-0514"};

[[noreturn]] void BuildFailed(const std::string& step, const Status& status) {
  std::fprintf(stderr, "the fuzz county could not be built: %s: %s\n", step.c_str(), status.ToString().c_str());
  std::abort();
}

void Must(const Status& status, const std::string& step) {
  if (!status.ok()) BuildFailed(step, status);
}
template <typename T>
T Must(Result<T> result, const std::string& step) {
  if (!result.ok()) BuildFailed(step, result.status());
  return std::move(result).value();
}

// The directory all of this process's data dirs live in (see the header).
std::string MakeRoot() {
  std::string base;
  if (const char* env = std::getenv("AIDSYNC_FUZZ_TMP"); env && *env) {
    base = env;
  } else if (::access("/dev/shm", W_OK) == 0) {
    base = "/dev/shm";
  } else if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) {
    base = tmp;
  } else {
    base = "/tmp";
  }
  std::string tmpl = base + "/aidsync-fuzz-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) BuildFailed("mkdtemp in " + base, Status::IOError(std::strerror(errno)));
  return tmpl;
}

std::map<std::string, std::string> ReadDir(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    files[entry.path().filename().string()] = testing::ReadFile(entry.path().string());
  }
  return files;
}

void WritePrivateFile(const std::string& path, const std::string& bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) BuildFailed("create " + path, Status::IOError(std::strerror(errno)));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      ::close(fd);
      BuildFailed("write " + path, Status::IOError(std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

// One local transaction putting one row; returns its id.
std::string Put(Replica& replica, const std::string& table, std::optional<std::string> id,
                const std::vector<std::pair<std::string, std::string>>& values) {
  auto tx = Must(replica.BeginLocal(), "begin a write to " + table);
  std::string row = Must(tx->Put(table, std::move(id), std::nullopt, values), "put a row of " + table);
  Must(tx->Commit().status(), "commit a row of " + table);
  return row;
}

void Delete(Replica& replica, const std::string& table, const std::string& id) {
  auto tx = Must(replica.BeginLocal(), "begin a delete");
  Must(tx->Delete(table, id), "delete a row of " + table);
  Must(tx->Commit().status(), "commit a delete");
}

// What `from` would send `to` in a sync session or bundle: certificates, then
// every changeset `to`'s scope may see, in one batch.
void Carry(Replica& from, Replica& to) {
  for (const auto& cert : Must(from.CertificatesVisibleTo(to.identity().scope), "list certificates"))
    Must(to.AddCertificate(cert).status(), "add a certificate");
  std::vector<std::string> batch;
  Must(from.ForEachChangesetVisibleTo(to.identity().scope,
                                      [&](std::string_view envelope) {
                                        batch.emplace_back(envelope);
                                        return Status::OK();
                                      }),
       "read the log");
  ApplyReport report = Must(to.ApplyRemote(batch), "apply a batch");
  if (report.rejected > 0) BuildFailed("apply a batch", Status::Corruption(report.rejections.front()));
}

// The envelopes `author` signed that `replica` holds, in log order, from the
// `skip`-th on.
std::vector<std::string> EnvelopesBy(Replica& replica, const PublicKey& author, size_t skip = 0) {
  auto rows = Must(replica.Query("SELECT hex(envelope) FROM aidsync_log WHERE author = x'" + author.Hex() +
                                 "' ORDER BY id"),
                   "read own envelopes");
  std::vector<std::string> out;
  for (size_t i = skip; i < rows.rows.size(); ++i)
    out.push_back(Must(UnpackStoredEnvelope(Must(FromHex(rows.rows[i].at(0).ToDisplay()), "decode an envelope"),
                                            ChangesetLimits{}.max_envelope_bytes),
                       "unpack a stored envelope"));
  return out;
}

}  // namespace

County& County::Get() {
  static County* county = new County();  // never destroyed before the last input runs
  static const bool cleanup = [] {
    std::atexit([] { delete county; });
    return true;
  }();
  (void)cleanup;
  return *county;
}

County::County()
    : root_(MakeRoot()),
      random_(kCountySeed),
      authority_(SigningKey::Generate(random_)),
      stranger_(SigningKey::Generate(random_)),
      joiner_a_(SigningKey::Generate(random_)),
      joiner_b_(SigningKey::Generate(random_)) {
  Build();
}

County::~County() {
  for (auto& w : work_) w.replica.reset();
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

void County::Build() {
  struct Spec {
    const char* name;
    const char* code;
    const char* scope;
  };
  const Spec specs[kNodeCount] = {{"县法律援助中心", "0500", "430123"},
                                  {"城关镇工作站", "0512", "430123/05"},
                                  {"白沙镇工作站", "0513", "430123/06"},
                                  {"新华村联系点", "0514", "430123/05/017"}};
  for (int i = 0; i < kNodeCount; ++i) {
    WorkingNode& w = work_[i];
    w.dir = root_ + "/" + kNodeDirs[i];
    w.clock.Set(kBuildStartMs);
    w.env.clock = &w.clock;
    w.env.random = &random_;  // one seeded source, drawn in a fixed order
    NodeConfig config{specs[i].name, specs[i].code, specs[i].scope, i == 0 ? Role::kHub : Role::kStation,
                      authority_.public_key()};
    Must(Replica::Create(w.dir, config, w.env, i == 0 ? &authority_ : nullptr).status(),
         std::string("create ") + specs[i].name);
    w.replica = Must(Replica::Open(w.dir, w.env), std::string("open ") + specs[i].name);
    keys_.push_back(std::make_unique<SigningKey>(Must(SigningKey::Load(w.dir + "/node.key"), "load a node key")));
  }
  Replica& hub = *work_[0].replica;
  certs_.push_back(*Must(hub.CertificateByKey(hub.identity().key), "read the hub's certificate"));
  for (int i = 1; i < kNodeCount; ++i) {
    CertificateFields f{keys_[i]->public_key(), specs[i].name, specs[i].code, Role::kStation, specs[i].scope,
                        kBuildStartMs, {}};
    Certificate cert = Must(Certificate::Issue(f, authority_), "issue a certificate");
    Must(work_[i].replica->InstallOwnCertificate(cert.bytes()), "install a certificate");
    Must(hub.RecordStation(cert), "record a station");
    certs_.push_back(cert);
  }
  auto advance = [&](int64_t ms) {
    for (auto& w : work_) w.clock.Advance(ms);
  };

  // The hub's reference data, sent down to every station.
  advance(3600 * 1000);
  senior_ = Put(hub, "lawyers", std::nullopt,
                {{"name", "王建国"}, {"firm", "正义律师事务所"}, {"kind", "lawyer"}, {"practice_years", "8"},
                 {"phone", "13800000001"}, {"active", "1"}});
  Put(hub, "lawyers", std::nullopt,
      {{"name", "赵新"}, {"firm", "正义律师事务所"}, {"kind", "lawyer"}, {"practice_years", "2"}, {"active", "1"}});
  Put(hub, "lawyers", std::nullopt, {{"name", "李晓"}, {"kind", "intern"}, {"practice_years", "1"}, {"active", "1"}});
  Put(hub, "notices", std::nullopt,
      {{"title", "关于开展“法律援助进乡村”活动的通知"}, {"body", "各工作站每月至少开展一次进村宣传。"},
       {"issued_at", "2024-06-01"}});
  Put(hub, "targets", std::nullopt, {{"year", "2024"}, {"station_code", "0512"}, {"metric", "cases"}, {"value", "120"}});
  for (int i = 1; i < kNodeCount; ++i) Carry(hub, *work_[i].replica);

  // 0512's first writes, synced to the hub.
  Replica& chengguan = *work_[1].replica;
  advance(kDayMs);
  std::string app = Put(chengguan, "applications", std::nullopt,
                        {{"applicant_name", "张桂兰"}, {"id_number", "430123195804120021"}, {"category", "civil"},
                         {"matter", "追索劳动报酬"}, {"income_status", "low_income"}, {"received_at", "2024-06-06"},
                         {"status", "approved"}, {"decision_basis", "《法律援助条例》第十条"},
                         {"decided_at", "2024-06-07"}});
  case_ = Put(chengguan, "cases", std::nullopt,
              {{"application_id", app}, {"lawyer_id", senior_}, {"category", "civil"}, {"assigned_at", "2024-06-07"},
               {"status", "assigned"}, {"funding", "regular"}});
  std::string consultation = Put(chengguan, "consultations", std::nullopt,
                                 {{"channel", "walk_in"}, {"topic", "土地承包"}, {"summary", "咨询承包地调整"},
                                  {"consulted_at", "2024-06-07"}});
  const size_t synced_0512 = EnvelopesBy(chengguan, keys_[1]->public_key()).size();
  Carry(chengguan, hub);

  // 0514's one consultation reaches the hub; then the county revokes 0514.
  Put(*work_[3].replica, "consultations", std::nullopt,
      {{"channel", "hotline_12348"}, {"topic", "赡养纠纷"}, {"summary", "子女不履行赡养义务"},
       {"consulted_at", "2024-06-08"}});
  Carry(*work_[3].replica, hub);
  advance(kDayMs);
  // The hub moves 0512's case on itself: 0512's own later edit of the same
  // field is then a conflict at the hub.
  Put(hub, "cases", case_, {{"status", "in_progress"}});
  revocation_ = std::make_unique<Revocation>(
      Must(hub.Revoke(keys_[3]->public_key(), "设备丢失，联系点撤并", authority_), "revoke 0514"));

  // Two invites: one live, one expired by the time the fuzz inputs arrive.
  random_.Fill(live_invite_.bytes.data(), live_invite_.bytes.size());
  random_.Fill(expired_invite_.bytes.data(), expired_invite_.bytes.size());
  Must(hub.CreateInvite({"新华村联系点", "0515", "430123/05/018"}, live_invite_, kNowMs + 7 * kDayMs, authority_),
       "create the live invite");
  Must(hub.CreateInvite({"东山村联系点", "0516", "430123/05/019"}, expired_invite_, kNowMs - kDayMs, authority_),
       "create the expired invite");
  InviteToken token{kHubAddress, hub.identity().key, authority_.public_key(), {}, kNowMs + 7 * kDayMs};
  token.secret.bytes = live_invite_.bytes;
  live_token_ = EncodeInviteToken(token);
  Must(hub.ForEachChangesetVisibleTo(hub.identity().scope,
                                     [&](std::string_view envelope) {
                                       hub_log_.emplace_back(envelope);
                                       return Status::OK();
                                     }),
       "read the hub's log");
  Freeze(NodeId::kHub);

  // 0512's later writes and 0513's ticket: the hub has not seen them.
  advance(kDayMs);
  std::string app2 = Put(chengguan, "applications", std::nullopt,
                         {{"applicant_name", "李秀英"}, {"id_number", "430123198811230042"}, {"category", "criminal"},
                          {"matter", "被告人申请指派辩护律师"}, {"income_status", "subsistence"},
                          {"received_at", "2024-06-10"}, {"status", "approved"},
                          {"decision_basis", "《法律援助法》第二十五条"}, {"decided_at", "2024-06-10"}});
  Put(chengguan, "cases", std::nullopt,
      {{"application_id", app2}, {"lawyer_id", senior_}, {"category", "criminal"}, {"assigned_at", "2024-06-11"},
       {"status", "assigned"}, {"funding", "lottery"}});
  Put(chengguan, "cases", case_,
      {{"status", "closed"}, {"outcome", "调解结案，追回工资"}, {"recovered_amount", "12800.5"},
       {"closed_at", "2024-06-12"}});
  Put(chengguan, "return_visits", std::nullopt,
      {{"case_id", case_}, {"visited_at", "2024-06-13"}, {"satisfaction", "5"}, {"fee_charged", "0"},
       {"note", "当事人表示满意"}});
  Delete(chengguan, "consultations", consultation);
  unsynced_ = EnvelopesBy(chengguan, keys_[1]->public_key(), synced_0512);
  Put(*work_[2].replica, "hotline_tickets", std::nullopt,
      {{"caller", "刘大爷"}, {"phone", "13900000002"}, {"topic", "拖欠工资"}, {"summary", "工地拖欠三个月工资"},
       {"received_at", "2024-06-12"}, {"status", "open"}});
  for (auto& envelope : EnvelopesBy(*work_[2].replica, keys_[2]->public_key())) unsynced_.push_back(envelope);
  Freeze(NodeId::k0512);
  Freeze(NodeId::k0513);
  Freeze(NodeId::k0514);
}

void County::Freeze(NodeId node) {
  WorkingNode& w = work_[static_cast<int>(node)];
  w.replica.reset();
  templates_[static_cast<int>(node)] = ReadDir(w.dir);
}

WorkingNode& County::Fresh(NodeId node) {
  const int i = static_cast<int>(node);
  WorkingNode& w = work_[i];
  w.replica.reset();
  const auto& files = templates_[i];
  // What the last input left beside the template's files (a WAL, its index):
  // listed first, removed after, as removing while iterating is unspecified.
  std::vector<std::filesystem::path> extra;
  for (const auto& entry : std::filesystem::directory_iterator(w.dir))
    if (files.count(entry.path().filename().string()) == 0) extra.push_back(entry.path());
  for (const auto& path : extra) std::filesystem::remove_all(path);
  for (const auto& [name, bytes] : files) WritePrivateFile(w.dir + "/" + name, bytes);
  w.clock.Set(kNowMs);
  w.random = std::make_unique<testing::SeededRandom>(kCountySeed + 1 + i);
  w.env.clock = &w.clock;
  w.env.random = w.random.get();
  w.replica = Must(Replica::Open(w.dir, w.env), std::string("reopen ") + kNodeDirs[i]);
  return w;
}

std::string DumpState(Replica& replica) {
  std::ostringstream out;
  for (const auto& table : replica.schema().tables) {
    auto rows = replica.List(table.name);
    if (!rows.ok()) {
      out << table.name << ": " << rows.status().ToString() << "\n";
      continue;
    }
    for (const auto& row : *rows) {
      out << table.name;
      for (const auto& [column, value] : row) out << " " << column << "=" << value.ToDisplay();
      out << "\n";
    }
  }
  auto conflicts = replica.Conflicts();
  if (!conflicts.ok()) return out.str() + "conflicts: " + conflicts.status().ToString() + "\n";
  for (const auto& c : *conflicts) {
    out << "conflict " << c.table << "/" << c.id << "." << c.column << (c.row_deleted ? " deleted" : "");
    if (c.winner) out << " winner " << c.winner->value.ToDisplay() << " " << c.winner->changeset;
    for (const auto& loser : c.losers) out << " loser " << loser.value.ToDisplay() << " " << loser.changeset;
    out << "\n";
  }
  return out.str();
}

int64_t LogSize(Replica& replica) {
  auto result = replica.Query("SELECT count(*) FROM aidsync_log");
  if (!result.ok() || result->rows.empty()) return -1;
  const auto& v = result->rows.front().front().v;
  return std::holds_alternative<int64_t>(v) ? std::get<int64_t>(v) : -1;
}

}  // namespace aidsync::fuzz
