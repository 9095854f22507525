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
// for its content; returns that size.
Result<size_t> DeclaredSize(std::string_view frame, const UnpackLimits& limits) {
  // Exactly one ordinary zstd frame: skippable frames, dictionaries' magic
  // and concatenated frames are not what a sender writes.
  if (frame.size() < kLengthBytes || GetLength(frame.data()) != ZSTD_MAGICNUMBER)
    return Status::Corruption("packed changesets are not a zstd frame");
  const size_t whole = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(whole)) return Status::Corruption("packed changesets are a truncated or malformed zstd frame");
  if (whole != frame.size()) return Status::Corruption("packed changesets have bytes after their zstd frame");
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Status::Corruption("packed changesets have a malformed frame header");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN)
    return Status::Corruption("packed changesets do not declare their unpacked size");
  if (declared > limits.max_unpacked_bytes)
    return Status::Corruption("packed changesets would unpack to " + std::to_string(declared) +
                              " bytes, over the limit of " + std::to_string(limits.max_unpacked_bytes));
  if (declared == 0) return Status::Corruption("packed changesets hold no changeset");
  return static_cast<size_t>(declared);
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

Result<std::string> Packer::Pack(const std::vector<std::string>& envelopes) {
  if (!cctx_) {
    // Made on first use, so a session that never packs costs nothing.
    cctx_.reset(ZSTD_createCCtx());
    if (!cctx_) return Status::Unavailable("zstd cannot allocate a compression context");
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level_))) {
      cctx_.reset();
      return Status::Unavailable("zstd refuses compression level " + std::to_string(level_));
    }
  }
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
  ASSIGN_OR_RETURN(size_t size, DeclaredSize(frame, limits));
  std::unique_ptr<ZSTD_DCtx, FreeDCtx> dctx(ZSTD_createDCtx());
  if (!dctx) return Status::Unavailable("zstd cannot allocate a decompression context");
  std::string list(size, '\0');
  // One-shot decompression into a buffer of exactly the declared size: zstd
  // fails if the frame produces more, and reports what it produced if less.
  const size_t n = ZSTD_decompressDCtx(dctx.get(), list.data(), list.size(), frame.data(), frame.size());
  if (ZSTD_isError(n))
    return Status::Corruption(std::string("packed changesets do not decompress: ") + ZSTD_getErrorName(n));
  if (n != size) return Status::Corruption("packed changesets unpack to another size than their frame declares");
  return SplitList(list, limits);
}

}  // namespace aidsync
