// Writes the seed corpus of every fuzz target (tests/fuzz/corpus/<name>/)
// from real objects of the fuzz county (tests/fuzz/fuzz_county.h): signed
// changesets, certificates, a revocation, bundles, invite tokens, recorded
// sync sessions, and import files in the county's own wording.
//
//   make_corpus [OUT_DIR]    (default: the source tree's tests/fuzz/corpus)
//
// Run it after a change to a wire format or to fuzz_county.cc, and commit the
// files it writes: they are replayed by every build (fuzz_replay_<name>) and
// seed scripts/fuzz.sh. Not run by CI. The county is deterministic, so the
// output is the same on every run except for sealed bundles (libsodium draws
// their ephemeral keys itself).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "crypto/certificate.h"
#include "crypto/invite.h"
#include "crypto/revocation.h"
#include "schema/certificate.capnp.h"
#include "schema/legal_aid.h"
#include "schema/revocation.capnp.h"
#include "sync/protocol.h"
#include "sync/sync_session.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/make_corpus.h"
#include "tests/fuzz/resign.h"

namespace aidsync::fuzz {
namespace {

namespace fs = std::filesystem;

// Mode byte + one schema table index (the import target's first two bytes).
std::string ImportHeader(int format, const std::string& table) {
  const auto tables = LegalAidSchema().tables;
  for (size_t i = 0; i < tables.size(); ++i)
    if (tables[i].name == table) return {static_cast<char>(format), static_cast<char>(i)};
  Fail("no table " + table);
}

Seeds ImportSeeds(County& county) {
  constexpr int kCsv = 0, kJson = 1, kAuto = 2;
  Seeds seeds;
  seeds["csv-consultations"] = ImportHeader(kCsv, "consultations") +
                               "channel,topic,summary,consulted_at\n"
                               "walk_in,土地承包,咨询承包地调整,2024-06-03\n"
                               "phone,\"租赁, 押金\",\"他说\"\"退押金\"\"\",2024-06-04\n"
                               "online,工伤,\"第一行\n第二行\",2024-06-05\n"
                               "hotline_12348,赡养纠纷,,2024-06-05\n";
  seeds["csv-applications-bom-ids"] =
      ImportHeader(kCsv, "applications") +
      "\xEF\xBB\xBFid,scope,applicant_name,id_number,category,matter,income_status,received_at,status,"
      "decision_basis,decided_at\n"
      "legacy-2015-0001,430123/05,王秀英,430123196203150028,civil,追索抚养费,subsistence,2015-04-02,approved,"
      "《法律援助条例》第十条,2015-04-03\n"
      "legacy-2015-0002,,陈建军,430123197001010011,criminal,申请指派辩护人,low_income,2015-05-11,received,,\n";
  seeds["csv-refused-no-basis"] = ImportHeader(kCsv, "applications") +
                                  "applicant_name,category,status\n"
                                  "刘德华,civil,approved\n";
  seeds["csv-cases"] = ImportHeader(kCsv, "cases") +
                       "application_id,lawyer_id,category,assigned_at,status,funding,recovered_amount\n"
                       "legacy-2015-0001," + county.senior_lawyer_id() + ",civil,2015-04-03,closed,lottery,3500.5\n";
  seeds["jsonl-return-visits"] =
      ImportHeader(kJson, "return_visits") + R"({"case_id": ")" + county.case_id() +
      R"(", "visited_at": "2024-06-13", "satisfaction": 5, "fee_charged": false, "note": "当事人表示满意"})" "\n"
      R"({"case_id": ")" + county.case_id() +
      R"(", "visited_at": "2024-06-20", "satisfaction": 4, "fee_charged": 0, "note": null})" "\n";
  seeds["jsonl-hotline"] = ImportHeader(kJson, "hotline_tickets") +
                           R"({"caller": "刘大爷", "phone": "13900000002", "topic": "拖欠工资", "summary": "工地拖欠三个月工资", "received_at": "2024-06-12", "status": "open"})"
                           "\n\n"
                           R"({"id": "ticket-7", "caller": "匿名", "topic": "家暴", "received_at": "2024-06-13"})" "\n";
  seeds["auto-quality-reviews"] = ImportHeader(kAuto, "quality_reviews") +
                                  "  " R"({"case_id": ")" + county.case_id() +
                                  R"(", "reviewer": "县司法局", "score": 92, "findings": "卷宗完整", "reviewed_at": "2024-06-30"})" "\n";
  seeds["auto-csv-complaints"] = ImportHeader(kAuto, "complaints") +
                                 "case_id,lawyer_id,received_at,content,status\n" + county.case_id() + "," +
                                 county.senior_lawyer_id() + ",2024-06-14,律师未按时会见当事人,open\n";
  seeds["csv-lawyers-on-a-station"] = ImportHeader(kCsv, "lawyers") + "name,kind,practice_years\n孙律师,lawyer,4\n";
  return seeds;
}

std::string Mode(int mode) { return std::string(1, static_cast<char>(mode)); }

Seeds CertificateSeeds(County& county) {
  Seeds seeds;
  const char* names[] = {"hub", "0512", "0513", "0514"};
  for (int i = 0; i < kNodeCount; ++i)
    seeds[std::string("cert-") + names[i]] = Mode(0) + county.CertificateOf(static_cast<NodeId>(i)).bytes();
  seeds["revocation-0514"] = Mode(1) + county.revocation().bytes();
  seeds["enrolment-0512"] = Mode(2) + EncodeEnrolment({county.CertificateOf(NodeId::k0512).bytes(),
                                                       county.CertificateOf(NodeId::kHub).bytes()});
  seeds["body-cert-0512"] = Mode(3) + BodyOf<wire::SignedCertificate>(county.CertificateOf(NodeId::k0512).bytes());
  CertificateFields newcomer{county.joiner(0).public_key(), "石门村联系点", "0517", Role::kStation, "430123/05/020",
                             kNowMs, {}};
  auto issued = Certificate::Issue(newcomer, county.authority());
  if (!issued.ok()) Fail(issued.status().ToString());
  seeds["body-cert-new-station"] = Mode(3) + BodyOf<wire::SignedCertificate>(issued->bytes());
  seeds["body-revocation-0514"] = Mode(4) + BodyOf<wire::SignedRevocation>(county.revocation().bytes());
  // 0512 revoked keeping only the first two of the three case changesets the
  // hub holds: the third is taken back.
  RevocationFields fields{county.KeyOf(NodeId::k0512).public_key(), {{"430123/05", TableClass::kCase, 2}}, kNowMs,
                          "工作站电脑被盗", {}};
  auto revocation = Revocation::Issue(fields, county.authority());
  if (!revocation.ok()) Fail(revocation.status().ToString());
  seeds["body-revocation-0512-take-back"] = Mode(4) + BodyOf<wire::SignedRevocation>(revocation->bytes());
  return seeds;
}

Seeds InviteSeeds(County& county) {
  Seeds seeds;
  seeds["token-live"] = Mode(0) + county.live_token();
  auto token = DecodeInviteToken(county.live_token());
  if (!token.ok()) Fail(token.status().ToString());
  // Joiner A's request as `aidsync join` sends it, and the hub's answer.
  JoinClient joiner(county.joiner(0), *token, kClientSession);
  const std::string request = *joiner.Start();
  seeds["join-live"] = Mode(1) + request;
  WorkingNode& hub = county.Fresh(NodeId::kHub);
  SyncServer server(*hub.replica, FuzzSyncOptions());
  auto curve = DeriveCurvePublic(county.joiner(0).public_key());
  const std::string reply = server.Handle(
      "joiner", ToHex(std::string_view(reinterpret_cast<const char*>(curve->data()), curve->size())), request);
  seeds["reply-enrolled"] = Mode(3) + reply;
  seeds["reply-refused"] =
      Mode(3) + EncodeMessage({kProtocolVersion, kClientSession, RefusedMsg{"invite_used", "邀请码已被使用"}});
  // Join attempts: [invite, key, flags] each (invite_fuzz.cc).
  auto attempts = [](std::initializer_list<int> bytes) {
    std::string out = Mode(2);
    for (int b : bytes) out += static_cast<char>(b);
    return out;
  };
  seeds["attempts-a-joins"] = attempts({0, 0, 0});
  seeds["attempts-a-twice-then-b"] = attempts({0, 0, 0, 0, 0, 0, 0, 1, 0});
  seeds["attempts-expired-and-bad-proof"] = attempts({1, 0, 0, 0, 1, 1});
  seeds["attempts-enrolled-and-revoked-keys"] = attempts({0, 2, 0, 0, 3, 0, 0, 5, 0});
  seeds["attempts-after-expiry"] = attempts({0, 0, 0xFE, 0, 0, 0x60});
  return seeds;
}

void WriteSeeds(const fs::path& dir, const Seeds& seeds) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  size_t bytes = 0;
  for (const auto& [name, content] : seeds) {
    testing::WriteFile((dir / name).string(), content);
    bytes += content.size();
  }
  std::printf("%-14s %3zu seeds, %6zu bytes -> %s\n", dir.filename().c_str(), seeds.size(), bytes, dir.c_str());
}

}  // namespace
}  // namespace aidsync::fuzz

int main(int argc, char** argv) {
  using namespace aidsync::fuzz;
  const std::filesystem::path out = argc > 1 ? argv[1] : AIDSYNC_SOURCE_DIR "/tests/fuzz/corpus";
  County& county = County::Get();
  const std::map<std::string, std::function<Seeds(County&)>> generators = {
      {"import", ImportSeeds},         {"certificate", CertificateSeeds}, {"invite", InviteSeeds},
      {"sync_message", SyncMessageSeeds}, {"changeset", ChangesetSeeds},   {"bundle", BundleSeeds},
  };
  for (const auto& [name, generate] : generators) WriteSeeds(out / name, generate(county));
  return 0;
}
