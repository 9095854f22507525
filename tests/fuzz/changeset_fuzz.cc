// Fuzz target `changeset`: changeset parsing, signature verification and
// apply (sync/changeset.h DecodeChangeset, Replica::ApplyRemote) on a fresh
// replica of the county hub (tests/fuzz/fuzz_county.h) for every input.
// Changesets arrive from peers and on USB sticks; none may crash a node,
// stop the others in its batch, or leave the tables out of step with the log.
//
// Input: byte 0 chooses the mode (mod 3):
//   0  envelopes as a peer would send them, joined by kPartSeparator: the
//      parser and the signature check see the fuzzer's bytes directly.
//   1  [signer] bodies joined by kPartSeparator, each read leniently, put in
//      canonical form and signed again (resign.h) — signer 0-4 also writes
//      its key into the author field (hub, 0512, 0513, revoked 0514, a
//      stranger); signer 5+ keeps the author and signs with its key.
//   2  an edit script over the county's real unsynced changesets
//      (changeset_edits.h), each result signed by the key it names.
// Modes 1 and 2 get past the signature check, so apply logic (chains,
// holds, forks, merge, authority and scope rules, revocation limits) sees
// what a hostile enrolled station could sign.
//
// Checked per input: ApplyRemote succeeds (a bad changeset is rejected, never
// an error: only the local store may fail, and a fresh tmpfs replica does
// not); a decoded changeset's id is its body's digest; and when anything was
// applied, Replica::Rebuild() from the log reproduces the tables and
// conflicts the incremental apply left (the log is the truth, DESIGN 4).
#include <cstdint>
#include <string>
#include <vector>

#include "schema/changeset.capnp.h"
#include "sync/changeset.h"
#include "tests/fuzz/changeset_edits.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/resign.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() {
  return {"raw changeset applied", "re-signed body applied", "edited changeset applied", "changeset rejected",
          "changeset held", "rebuild matched"};
}

namespace {

std::vector<std::string> RawEnvelopes(std::string_view input) {
  std::vector<std::string> out;
  for (auto part : SplitParts(input)) out.emplace_back(part);
  return out;
}

// Mode 1: each body re-signed (see the file comment for `signer`).
std::vector<std::string> ResignedEnvelopes(County& county, uint8_t signer, std::string_view bodies) {
  const SigningKey* keys[] = {&county.KeyOf(NodeId::kHub), &county.KeyOf(NodeId::k0512),
                              &county.KeyOf(NodeId::k0513), &county.KeyOf(NodeId::k0514), &county.stranger()};
  std::vector<std::string> out;
  for (auto part : SplitParts(bodies)) {
    const SigningKey* key = signer < std::size(keys) ? keys[signer] : nullptr;
    auto body = CanonicalBody<wire::ChangesetBody>(part, [&](wire::ChangesetBody::Builder b) {
      if (key != nullptr) {
        b.setAuthor(DataOf(key->public_key().view()));
        return;
      }
      auto author = PublicKey::FromBytes(DataView(b.getAuthor()));
      key = author.ok() ? KeyFor(county, *author) : nullptr;
    });
    if (!body) continue;
    out.push_back(SignBody<wire::SignedChangeset>(*body, kChangesetContext, key ? *key : county.stranger()));
  }
  return out;
}

// Every envelope that decodes names, as its id, the digest of its body.
void CheckDecoding(const std::vector<std::string>& envelopes) {
  for (const auto& envelope : envelopes) {
    Digest id;
    auto content = DecodeChangeset(envelope, &id);  // the product's limits
    if (!content.ok()) continue;
    capnp::ReaderOptions options;
    auto outer = CanonicalMessage::Parse(envelope, options, "changeset");
    AIDSYNC_FUZZ_CHECK(outer.ok(), "a changeset that decodes is not canonical");
    auto body = DataView((*outer)->Root<wire::SignedChangeset>().getBody());
    AIDSYNC_FUZZ_CHECK(ComputeDigest(kChangesetContext, body) == id, "a changeset's id is not its body's digest");
  }
}

void Tally(int mode, const ApplyReport& report) {
  const char* applied[] = {"raw changeset applied", "re-signed body applied", "edited changeset applied"};
  if (report.applied > 0) Reached(applied[mode]);
  if (report.rejected > 0) Reached("changeset rejected");
  if (report.held > 0) Reached("changeset held");
  for (const auto& why : report.rejections) Note("rejected: " + why);
  Note("applied " + std::to_string(report.applied) + ", duplicates " + std::to_string(report.duplicates) +
       ", held " + std::to_string(report.held) + ", rejected " + std::to_string(report.rejected));
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync;
  using namespace aidsync::fuzz;
  if (size < 1) return 0;
  County& county = County::Get();
  const int mode = data[0] % 3;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> envelopes;
  switch (mode) {
    case 0: envelopes = RawEnvelopes(rest); break;
    case 1: envelopes = ResignedEnvelopes(county, rest.empty() ? 0 : static_cast<uint8_t>(rest[0]),
                                          rest.empty() ? rest : rest.substr(1)); break;
    default: envelopes = RunEditScript(county, rest); break;
  }
  CheckDecoding(envelopes);

  Replica& hub = *county.Fresh(NodeId::kHub).replica;
  auto report = hub.ApplyRemote(envelopes);
  AIDSYNC_FUZZ_CHECK(report.ok(), "ApplyRemote failed on received changesets: " + report.status().ToString());
  Tally(mode, *report);
  if (report->applied == 0) return 0;

  const std::string applied = DumpState(hub);
  Status rebuilt = hub.Rebuild();
  AIDSYNC_FUZZ_CHECK(rebuilt.ok(), "Rebuild failed after an apply: " + rebuilt.ToString());
  const std::string replayed = DumpState(hub);
  AIDSYNC_FUZZ_CHECK(applied == replayed, "Rebuild from the log differs from the applied state:\n--- applied\n" +
                                               applied + "--- rebuilt\n" + replayed);
  Reached("rebuild matched");
  return 0;
}
