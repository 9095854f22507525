// Fuzz target `bundle`: the bundle reader (sync/bundle.h ApplyBundle, with
// the product's BundleReadOptions) on a fresh replica of station 0512
// (tests/fuzz/fuzz_county.h). A bundle is a file from a USB stick anyone may
// have handled.
//
// Input: byte 0 chooses the mode (mod 2):
//   0  the bundle file as it lies on the stick: the sealed stream's header,
//      key box and framing see the fuzzer's bytes.
//   1  the plaintext frames (tag byte + content) joined by kPartSeparator,
//      which the target seals to 0512's key before applying: what a hostile
//      sender who knows 0512's public key could write, so the frame
//      dispatch, the header check and everything a frame feeds (certificates,
//      revocations, changesets in batches) get coverage past the cipher.
//
// Checked per input: a bundle that fails to apply leaves the log, the tables,
// the trust store and the revocations exactly as they were (one transaction);
// one that applies leaves a log whose tables Rebuild() reproduces.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "crypto/sealed_stream.h"
#include "sync/bundle.h"
#include "tests/fuzz/fuzz_county.h"
#include "tests/fuzz/fuzz_support.h"

namespace aidsync::fuzz {

std::vector<std::string> ExpectedDepths() {
  return {"raw bundle applied", "sealed frames applied", "bundle refused", "bundle changeset applied"};
}

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// Seals `frames` to `recipient` as a bundle file at `path`.
void SealFrames(const std::vector<std::string_view>& frames, const PublicKey& recipient, RandomSource& random,
                const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> out(std::fopen(path.c_str(), "wb"));
  AIDSYNC_FUZZ_CHECK(out != nullptr, "cannot create " + path);
  auto writer = SealedStreamWriter::Start(out.get(), recipient, random);
  AIDSYNC_FUZZ_CHECK(writer.ok(), writer.status().ToString());
  for (auto frame : frames) AIDSYNC_FUZZ_CHECK((*writer)->Write(frame).ok(), "cannot write a frame");
  AIDSYNC_FUZZ_CHECK((*writer)->Finish().ok(), "cannot finish a sealed stream");
}

// Everything a failed apply must leave as it was.
std::string Snapshot(Replica& replica) {
  std::string out = DumpState(replica) + "log " + std::to_string(LogSize(replica)) + "\n";
  auto certs = replica.CertificatesVisibleTo(replica.identity().scope);
  auto revocations = replica.Revocations();
  out += "certificates " + std::to_string(certs.ok() ? certs->size() : -1) + "\n";
  out += "revocations " + std::to_string(revocations.ok() ? revocations->size() : -1) + "\n";
  return out;
}

}  // namespace
}  // namespace aidsync::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace aidsync;
  using namespace aidsync::fuzz;
  if (size < 1) return 0;
  County& county = County::Get();
  const bool sealed_here = data[0] % 2 == 1;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  WorkingNode& station = county.Fresh(NodeId::k0512);
  const std::string path = county.ScratchFile("input.bundle");
  if (sealed_here) {
    SealFrames(SplitParts(rest), station.replica->identity().key, *station.env.random, path);
  } else {
    testing::WriteFile(path, std::string(rest));
  }

  const std::string before = Snapshot(*station.replica);
  auto applied = ApplyBundle(*station.replica, path);  // the product's limits
  if (!applied.ok()) {
    Reached("bundle refused");
    Note("refused: " + applied.status().ToString());
    AIDSYNC_FUZZ_CHECK(Snapshot(*station.replica) == before,
                       "a refused bundle changed the replica: " + applied.status().ToString());
    return 0;
  }
  Reached(sealed_here ? "sealed frames applied" : "raw bundle applied");
  Note("applied " + std::to_string(applied->report.applied) + ", rejected " + std::to_string(applied->report.rejected));
  if (applied->report.applied == 0) return 0;
  Reached("bundle changeset applied");
  const std::string state = DumpState(*station.replica);
  AIDSYNC_FUZZ_CHECK(station.replica->Rebuild().ok(), "Rebuild failed after a bundle");
  AIDSYNC_FUZZ_CHECK(DumpState(*station.replica) == state, "Rebuild differs from the state a bundle left");
  return 0;
}
