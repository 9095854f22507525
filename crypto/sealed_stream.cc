#include "crypto/sealed_stream.h"

#include <sodium.h>

#include <cstring>
#include <new>

namespace aidsync {
namespace {

constexpr char kMagic[] = "AIDSEAL1";
constexpr size_t kMagicBytes = sizeof(kMagic) - 1;
constexpr size_t kStreamKeyBytes = crypto_secretstream_xchacha20poly1305_KEYBYTES;
constexpr size_t kSealedKeyBytes = crypto_box_SEALBYTES + kStreamKeyBytes;
constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr size_t kFrameOverhead = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr size_t kLengthBytes = 4;

static_assert(kStreamKeyBytes == 32);

// libsodium state lives in sodium_malloc'd memory: locked, guarded, and zeroed
// by sodium_free. Throws std::bad_alloc like operator new. libsodium is already
// initialized here: keys.cc does it before any key exists or is derived.
template <typename T>
T* AllocateState() {
  void* memory = sodium_malloc(sizeof(T));
  if (memory == nullptr) throw std::bad_alloc();
  return new (memory) T();
}

template <typename T>
void FreeState(T* state) {
  if (state == nullptr) return;
  state->~T();
  sodium_free(state);
}

void PutLength(uint8_t out[kLengthBytes], uint32_t length) {
  for (size_t i = 0; i < kLengthBytes; ++i) out[i] = static_cast<uint8_t>(length >> (8 * i));
}

uint32_t GetLength(const uint8_t in[kLengthBytes]) {
  uint32_t length = 0;
  for (size_t i = 0; i < kLengthBytes; ++i) length |= static_cast<uint32_t>(in[i]) << (8 * i);
  return length;
}

bool WriteBytes(std::FILE* out, const void* data, size_t len) {
  return len == 0 || std::fwrite(data, 1, len, out) == len;
}

// Reads exactly len bytes; false on a short read (end of file or error).
bool ReadBytes(std::FILE* in, void* data, size_t len) {
  return len == 0 || std::fread(data, 1, len, in) == len;
}

Status Truncated() {
  return Status::Corruption("sealed stream ends before its final frame; the file is truncated");
}

}  // namespace

struct SealedStreamWriter::State {
  crypto_secretstream_xchacha20poly1305_state stream;
  bool finished = false;
  bool broken = false;  // a write failed: the file no longer holds a valid stream
};

struct SealedStreamReader::State {
  crypto_secretstream_xchacha20poly1305_state stream;
  uint64_t frames_read = 0;
  bool broken = false;  // an error was reported: never resume past it
};

SealedStreamWriter::SealedStreamWriter(std::FILE* out)
    : out_(out), state_(AllocateState<State>()) {}

SealedStreamWriter::~SealedStreamWriter() { FreeState(state_); }

Result<std::unique_ptr<SealedStreamWriter>> SealedStreamWriter::Start(std::FILE* out,
                                                                      const PublicKey& recipient,
                                                                      RandomSource& random) {
  auto curve_public = DeriveCurvePublic(recipient);
  if (!curve_public.ok()) return curve_public.status().WithContext("sealed stream recipient");
  std::unique_ptr<SealedStreamWriter> writer(new SealedStreamWriter(out));

  uint8_t key[kStreamKeyBytes];
  random.Fill(key, sizeof(key));
  uint8_t sealed_key[kSealedKeyBytes];
  uint8_t header[kStreamHeaderBytes];
  bool sealed = crypto_box_seal(sealed_key, key, sizeof(key), curve_public->data()) == 0;
  crypto_secretstream_xchacha20poly1305_init_push(&writer->state_->stream, header, key);
  sodium_memzero(key, sizeof(key));
  if (!sealed) return Status::InvalidArgument("cannot seal the stream key to the recipient key");

  if (!WriteBytes(out, kMagic, kMagicBytes) || !WriteBytes(out, sealed_key, sizeof(sealed_key)) ||
      !WriteBytes(out, header, sizeof(header))) {
    return Status::IOError("cannot write the sealed stream header");
  }
  return writer;
}

namespace {

// Encrypts one frame and writes [length][ciphertext].
Status PushFrame(std::FILE* out, crypto_secretstream_xchacha20poly1305_state* stream,
                 std::string_view plaintext, uint8_t tag) {
  std::string ciphertext(plaintext.size() + kFrameOverhead, '\0');
  crypto_secretstream_xchacha20poly1305_push(
      stream, reinterpret_cast<uint8_t*>(ciphertext.data()), nullptr,
      reinterpret_cast<const uint8_t*>(plaintext.data()), plaintext.size(), nullptr, 0, tag);
  uint8_t length[kLengthBytes];
  PutLength(length, static_cast<uint32_t>(ciphertext.size()));
  if (!WriteBytes(out, length, sizeof(length)) ||
      !WriteBytes(out, ciphertext.data(), ciphertext.size())) {
    return Status::IOError("cannot write a sealed stream frame");
  }
  return Status::OK();
}

}  // namespace

namespace {

Status CheckWritable(const SealedStreamWriter::State& state) {
  if (state.finished) return Status::InvalidArgument("sealed stream is already finished");
  if (state.broken) return Status::IOError("sealed stream is broken by an earlier write failure");
  return Status::OK();
}

}  // namespace

Status SealedStreamWriter::Write(std::string_view frame) {
  RETURN_IF_ERROR(CheckWritable(*state_));
  // Readers refuse frames over the default limit, so never write one.
  const size_t limit = SealedStreamOptions{}.max_frame_bytes;
  if (frame.size() > limit) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes is over the sealed stream limit of " +
                                   std::to_string(limit));
  }
  Status status =
      PushFrame(out_, &state_->stream, frame, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  state_->broken = !status.ok();
  return status;
}

Status SealedStreamWriter::Finish() {
  RETURN_IF_ERROR(CheckWritable(*state_));
  Status status =
      PushFrame(out_, &state_->stream, {}, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
  if (status.ok() && std::fflush(out_) != 0) {
    status = Status::IOError("cannot flush the sealed stream");
  }
  state_->finished = status.ok();
  state_->broken = !status.ok();
  return status;
}

SealedStreamReader::SealedStreamReader(std::FILE* in, SealedStreamOptions options)
    : in_(in), options_(options), state_(AllocateState<State>()) {}

SealedStreamReader::~SealedStreamReader() { FreeState(state_); }

namespace {

// Opens the sealed stream key with the recipient's identity. False if the key
// was sealed to someone else or the bytes were changed.
bool OpenStreamKey(const uint8_t sealed_key[kSealedKeyBytes], const SigningKey& own,
                   uint8_t key[kStreamKeyBytes]) {
  auto curve_public = DeriveCurvePublic(own.public_key());
  if (!curve_public.ok()) return false;
  uint8_t curve_secret[32];
  own.DeriveCurveSecret(curve_secret);
  bool opened = crypto_box_seal_open(key, sealed_key, kSealedKeyBytes, curve_public->data(),
                                     curve_secret) == 0;
  sodium_memzero(curve_secret, sizeof(curve_secret));
  return opened;
}

}  // namespace

Result<std::unique_ptr<SealedStreamReader>> SealedStreamReader::Open(
    std::FILE* in, const SigningKey& own, const SealedStreamOptions& options) {
  char magic[kMagicBytes];
  uint8_t sealed_key[kSealedKeyBytes];
  uint8_t header[kStreamHeaderBytes];
  if (!ReadBytes(in, magic, sizeof(magic)) || std::memcmp(magic, kMagic, kMagicBytes) != 0) {
    return Status::Corruption("not an aidsync sealed stream (the file does not start with " +
                              std::string(kMagic) + ")");
  }
  if (!ReadBytes(in, sealed_key, sizeof(sealed_key)) || !ReadBytes(in, header, sizeof(header))) {
    return Status::Corruption("sealed stream header is truncated");
  }
  std::unique_ptr<SealedStreamReader> reader(new SealedStreamReader(in, options));
  uint8_t key[kStreamKeyBytes];
  bool opened = OpenStreamKey(sealed_key, own, key);
  int init =
      opened ? crypto_secretstream_xchacha20poly1305_init_pull(&reader->state_->stream, header, key)
             : -1;
  sodium_memzero(key, sizeof(key));
  if (init != 0) {
    return Status::Corruption("sealed stream was not sealed to this node's key " +
                              own.public_key().Hex() + ", or its header is damaged");
  }
  return reader;
}

Result<std::optional<std::string>> SealedStreamReader::Next() {
  if (finished_) return std::optional<std::string>();
  if (state_->broken)
    return Status::Corruption("sealed stream is unreadable after an earlier error");
  state_->broken = true;  // cleared below once the frame checks out

  uint8_t length_bytes[kLengthBytes];
  if (!ReadBytes(in_, length_bytes, sizeof(length_bytes))) return Truncated();
  const uint32_t length = GetLength(length_bytes);
  const std::string frame_name = "sealed stream frame " + std::to_string(state_->frames_read + 1);
  if (length < kFrameOverhead || length - kFrameOverhead > options_.max_frame_bytes) {
    return Status::Corruption(frame_name + " claims " + std::to_string(length) +
                              " bytes, outside the allowed " + std::to_string(kFrameOverhead) +
                              " to " + std::to_string(options_.max_frame_bytes + kFrameOverhead));
  }
  std::string ciphertext(length, '\0');
  if (!ReadBytes(in_, ciphertext.data(), length)) return Truncated();

  std::string plaintext(length - kFrameOverhead, '\0');
  uint8_t tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(
          &state_->stream, reinterpret_cast<uint8_t*>(plaintext.data()), nullptr, &tag,
          reinterpret_cast<const uint8_t*>(ciphertext.data()), length, nullptr, 0) != 0) {
    return Status::Corruption(frame_name +
                              " fails authentication; the file was modified or damaged");
  }
  if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
    if (!plaintext.empty()) return Status::Corruption(frame_name + " is a final frame with data");
    // The stream ends with its FINAL frame: bytes after it mean the file was
    // altered (or two files were joined), so the whole stream is refused.
    if (std::fgetc(in_) != EOF) return Status::Corruption("sealed stream has bytes after its final frame");
    finished_ = true;
    state_->broken = false;
    return std::optional<std::string>();
  }
  if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    return Status::Corruption(frame_name + " has an unexpected tag");
  }
  ++state_->frames_read;
  state_->broken = false;
  return std::optional<std::string>(std::move(plaintext));
}

}  // namespace aidsync
