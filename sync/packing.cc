#include "sync/packing.h"

#include <zstd.h>

#include <cstdint>
#include <cstring>

namespace aidsync {
namespace {

constexpr size_t kLengthBytes = 4;

void PutLength(uint32_t n, std::string* out) {
  const char bytes[kLengthBytes] = {static_cast<char>(n), static_cast<char>(n >> 8), static_cast<char>(n >> 16),
                                    static_cast<char>(n >> 24)};
  out->append(bytes, kLengthBytes);
}

uint32_t GetLength(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 | static_cast<uint32_t>(u[2]) << 16 |
         static_cast<uint32_t>(u[3]) << 24;
}

struct FreeDCtx {
  void operator()(ZSTD_DCtx* dctx) const { ZSTD_freeDCtx(dctx); }
};

// Checks the frame's shape and declared size before anything is allocated
// for its content; returns that size. `what` names the bytes in errors.
Result<size_t> DeclaredSize(std::string_view frame, size_t max_bytes, const std::string& what) {
  // Exactly one ordinary zstd frame: skippable frames, dictionaries' magic
  // and concatenated frames are not what a writer makes.
  if (frame.size() < kLengthBytes || GetLength(frame.data()) != ZSTD_MAGICNUMBER)
    return Status::Corruption(what + " are not a zstd frame");
  const size_t whole = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(whole)) return Status::Corruption(what + " are a truncated or malformed zstd frame");
  if (whole != frame.size()) return Status::Corruption(what + " have bytes after their zstd frame");
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption(what + " have a malformed frame header");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return Status::Corruption(what + " do not declare their unpacked size");
  if (declared > max_bytes)
    return Status::Corruption(what + " would unpack to " + std::to_string(declared) + " bytes, over the limit of " +
                              std::to_string(max_bytes));
  if (declared == 0) return Status::Corruption(what + " hold no changeset");
  return static_cast<size_t>(declared);
}

// One-shot decompression of a checked frame into exactly its declared size:
// zstd fails if the frame produces more, and reports what it produced if less.
Result<std::string> Decompress(std::string_view frame, size_t max_bytes, const std::string& what) {
  ASSIGN_OR_RETURN(size_t size, DeclaredSize(frame, max_bytes, what));
  // One context per thread, kept: the log's readers unpack an envelope per
  // row, and a context costs an allocation of about 100 KiB to make.
  thread_local std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx(ZSTD_createDCtx());
  if (!dctx) return Status::Unavailable("zstd cannot allocate a decompression context");
  std::string out(size, '\0');
  const size_t n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return Status::Corruption(what + " do not decompress: " + ZSTD_getErrorName(n));
  if (n != size) return Status::Corruption(what + " unpack to another size than their frame declares");
  return out;
}

// Splits the unpacked list (u32 LE length, bytes; repeated) into envelopes.
Result<std::vector<std::string>> SplitList(std::string_view list, const UnpackLimits& limits) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < list.size()) {
    if (out.size() >= limits.max_entries)
      return Status::Corruption("packed changesets hold more than " + std::to_string(limits.max_entries));
    if (list.size() - pos < kLengthBytes) return Status::Corruption("packed changesets end inside a length");
    const size_t n = GetLength(list.data() + pos);
    pos += kLengthBytes;
    if (list.size() - pos < n) return Status::Corruption("a packed changeset runs past the end of the list");
    out.emplace_back(list.substr(pos, n));
    pos += n;
  }
  return out;
}

}  // namespace

void Packer::Free::operator()(ZSTD_CCtx_s* cctx) const { ZSTD_freeCCtx(cctx); }

Packer::Packer(int level) : level_(level) {}
Packer::~Packer() = default;
Packer::Packer(Packer&&) noexcept = default;
Packer& Packer::operator=(Packer&&) noexcept = default;

bool Packer::Ready() {
  if (cctx_) return true;
  // Made on first use, so a session that never packs costs nothing.
  cctx_.reset(ZSTD_createCCtx());
  if (!cctx_) return false;
  if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level_))) {
    cctx_.reset();
    return false;
  }
  return true;
}

std::string Packer::PackStored(std::string_view envelope) {
  if (!Ready()) return std::string(envelope);
  std::string frame(ZSTD_compressBound(envelope.size()), '\0');
  const size_t n = ZSTD_compress2(cctx_.get(), frame.data(), frame.size(), envelope.data(), envelope.size());
  if (ZSTD_isError(n) || n >= envelope.size()) return std::string(envelope);
  frame.resize(n);
  return frame;
}

Result<std::string> Packer::Pack(const std::vector<std::string>& envelopes) {
  if (!Ready()) return Status::Unavailable("zstd cannot set up a compression context at level " + std::to_string(level_));
  scratch_.clear();
  for (const auto& e : envelopes) {
    // Envelopes are at most ChangesetLimits' 263,168 bytes; a u32 holds any.
    PutLength(static_cast<uint32_t>(e.size()), &scratch_);
    scratch_.append(e);
  }
  std::string frame(ZSTD_compressBound(scratch_.size()), '\0');
  // ZSTD_compress2 writes the content size into the frame header: the
  // receiver checks it against its limit before allocating.
  const size_t n = ZSTD_compress2(cctx_.get(), frame.data(), frame.size(), scratch_.data(), scratch_.size());
  if (ZSTD_isError(n)) return Status::Unavailable(std::string("zstd cannot compress: ") + ZSTD_getErrorName(n));
  frame.resize(n);
  // Do not keep a large batch's buffer for the rest of the session.
  if (scratch_.capacity() > (1 << 20)) std::string().swap(scratch_);
  return frame;
}

Result<std::vector<std::string>> Unpack(std::string_view frame, const UnpackLimits& limits) {
  ASSIGN_OR_RETURN(std::string list, Decompress(frame, limits.max_unpacked_bytes, "packed changesets"));
  return SplitList(list, limits);
}

Result<std::string> UnpackStoredEnvelope(std::string_view stored, size_t max_bytes) {
  if (stored.size() < kLengthBytes || GetLength(stored.data()) != ZSTD_MAGICNUMBER) return std::string(stored);
  return Decompress(stored, max_bytes, "stored changeset bytes");
}

}  // namespace aidsync
