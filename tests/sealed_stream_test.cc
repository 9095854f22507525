// Tests for crypto/sealed_stream.h: round trips and every way a stick can be damaged.
#include "crypto/sealed_stream.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "base/env.h"
#include "crypto/keys.h"
#include "tests/test_support.h"

namespace aidsync {
namespace {

using testing::ReadFile;
using testing::SeededRandom;
using testing::TempDir;
using testing::WriteFile;

// Seals `frames` to `recipient` into `path`.
void WriteStream(const std::string& path, const PublicKey& recipient,
                 const std::vector<std::string>& frames, RandomSource& random) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  REQUIRE(out != nullptr);
  auto writer = SealedStreamWriter::Start(out, recipient, random);
  REQUIRE(writer.ok());
  for (const std::string& frame : frames) REQUIRE((*writer)->Write(frame).ok());
  REQUIRE((*writer)->Finish().ok());
  std::fclose(out);
}

// Reads every frame of the stream in `path`, or the first error.
Result<std::vector<std::string>> ReadStream(const std::string& path, const SigningKey& own,
                                            const SealedStreamOptions& options = {}) {
  std::FILE* in = std::fopen(path.c_str(), "rb");
  REQUIRE(in != nullptr);
  auto reader = SealedStreamReader::Open(in, own, options);
  if (!reader.ok()) {
    std::fclose(in);
    return reader.status();
  }
  std::vector<std::string> frames;
  for (;;) {
    auto next = (*reader)->Next();
    if (!next.ok()) {
      std::fclose(in);
      return next.status();
    }
    if (!next->has_value()) break;
    frames.push_back(std::move(**next));
  }
  std::fclose(in);
  return frames;
}

std::vector<std::string> SampleFrames() {
  std::string big(100 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  return {"first frame", "", big, "last"};
}

struct Fixture {
  TempDir dir;
  SeededRandom random{5};
  SigningKey recipient = SigningKey::Generate(random);
  std::string path = dir.File("bundle.sealed");
};

}  // namespace

TEST_CASE("sealed stream round trip", "[sealed]") {
  Fixture f;
  const std::vector<std::string> frames = SampleFrames();
  WriteStream(f.path, f.recipient.public_key(), frames, f.random);
  auto read = ReadStream(f.path, f.recipient);
  REQUIRE(read.ok());
  CHECK(*read == frames);

  // A stream with no frames at all is still a complete stream.
  std::string empty_path = f.dir.File("empty.sealed");
  WriteStream(empty_path, f.recipient.public_key(), {}, f.random);
  auto empty = ReadStream(empty_path, f.recipient);
  REQUIRE(empty.ok());
  CHECK(empty->empty());

  // After the final frame, Next keeps saying "no more".
  std::FILE* in = std::fopen(empty_path.c_str(), "rb");
  REQUIRE(in != nullptr);
  auto reader = SealedStreamReader::Open(in, f.recipient);
  REQUIRE(reader.ok());
  for (int i = 0; i < 2; ++i) {
    auto next = (*reader)->Next();
    REQUIRE(next.ok());
    CHECK_FALSE(next->has_value());
  }
  std::fclose(in);
}

TEST_CASE("sealed stream content is encrypted", "[sealed]") {
  Fixture f;
  WriteStream(f.path, f.recipient.public_key(), {"client name: Zhang San"}, f.random);
  std::string raw = ReadFile(f.path);
  CHECK(raw.rfind("AIDSEAL1", 0) == 0);
  CHECK(raw.find("Zhang San") == std::string::npos);
}

TEST_CASE("sealed stream for another key fails with Corruption", "[sealed]") {
  Fixture f;
  WriteStream(f.path, f.recipient.public_key(), SampleFrames(), f.random);
  SigningKey stranger = SigningKey::Generate(f.random);
  CHECK(ReadStream(f.path, stranger).status().code() == Status::Code::kCorruption);
}

TEST_CASE("truncated sealed stream fails", "[sealed]") {
  Fixture f;
  WriteStream(f.path, f.recipient.public_key(), SampleFrames(), f.random);
  const std::string good = ReadFile(f.path);
  // Header pieces, inside frames, at frame boundaries, and just before FINAL.
  const size_t final_frame = 4 + 17;
  std::vector<size_t> cuts = {0, 4, 8, 50, 88, 111, 112, 113, 120, 140, 200, 5000};
  cuts.push_back(good.size() / 2);
  cuts.push_back(good.size() - final_frame - 1);
  cuts.push_back(good.size() - final_frame);  // every message frame, no FINAL
  cuts.push_back(good.size() - 1);
  for (size_t cut : cuts) {
    REQUIRE(cut < good.size());
    WriteFile(f.path, good.substr(0, cut));
    INFO("cut at " << cut << " of " << good.size());
    CHECK(ReadStream(f.path, f.recipient).status().code() == Status::Code::kCorruption);
  }
}

TEST_CASE("a flipped byte in a sealed stream fails", "[sealed]") {
  Fixture f;
  WriteStream(f.path, f.recipient.public_key(), {"alpha", "", "gamma"}, f.random);
  const std::string good = ReadFile(f.path);
  // The stream is small, so try every byte.
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    WriteFile(f.path, bad);
    INFO("flipped byte " << i << " of " << good.size());
    CHECK(ReadStream(f.path, f.recipient).status().code() == Status::Code::kCorruption);
  }
}

TEST_CASE("oversized sealed stream frames are rejected", "[sealed]") {
  Fixture f;
  WriteStream(f.path, f.recipient.public_key(), {std::string(2000, 'x')}, f.random);
  SealedStreamOptions small;
  small.max_frame_bytes = 1000;
  auto read = ReadStream(f.path, f.recipient, small);
  CHECK(read.status().code() == Status::Code::kCorruption);
  CHECK(ReadStream(f.path, f.recipient).ok());

  // A forged length of 4 GiB is refused before anything is allocated.
  std::string forged = ReadFile(f.path);
  const size_t first_length = 8 + 80 + 24;
  for (size_t i = 0; i < 4; ++i) forged[first_length + i] = '\xff';
  WriteFile(f.path, forged);
  read = ReadStream(f.path, f.recipient);
  CHECK(read.status().code() == Status::Code::kCorruption);
  CHECK(read.status().message().find("claims") != std::string::npos);

  // The writer never produces a frame the default reader would refuse.
  std::FILE* out = std::fopen(f.dir.File("big.sealed").c_str(), "wb");
  REQUIRE(out != nullptr);
  auto writer = SealedStreamWriter::Start(out, f.recipient.public_key(), f.random);
  REQUIRE(writer.ok());
  CHECK((*writer)->Write(std::string((1 << 20) + 1, 'y')).code() == Status::Code::kInvalidArgument);
  REQUIRE((*writer)->Finish().ok());
  CHECK((*writer)->Finish().code() == Status::Code::kInvalidArgument);
  std::fclose(out);
}

TEST_CASE("sealed stream to an invalid recipient key is refused", "[sealed]") {
  TempDir dir;
  SystemRandom random;
  std::FILE* out = std::fopen(dir.File("x.sealed").c_str(), "wb");
  REQUIRE(out != nullptr);
  PublicKey bogus;
  bogus.bytes.fill(0xff);  // not a point on the curve
  auto writer = SealedStreamWriter::Start(out, bogus, random);
  CHECK(writer.status().code() == Status::Code::kInvalidArgument);
  std::fclose(out);
}

}  // namespace aidsync
