// The `packed` field of Push and Batch (docs/PROTOCOL.md section 2.7.1): the
// changeset envelopes of one message, each prefixed with its length, in one
// zstd frame. Packing is what brings a synced field write near its value's
// own size on the wire: Cap'n Proto's unpacked encoding of a changeset is
// mostly padding, pointers and repeated ids, which zstd removes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

struct ZSTD_CCtx_s;

namespace aidsync {

// zstd level of a packed field. Level 3 (zstd's default) against level 1 on
// the benchmark's batches: see docs/PROTOCOL.md section 2.7.1 for the figures.
constexpr int kDefaultPackLevel = 3;

// Limits on unpacking one received `packed` field. The bytes come from the
// network and are untrusted.
struct UnpackLimits {
  // The frame's declared content size, read from its header before anything
  // is allocated, and the size it actually decompresses to: stops a zip bomb
  // (a few KiB of zstd that would unpack to gigabytes). A frame that does not
  // declare its size is refused, so the check cannot be skipped.
  size_t max_unpacked_bytes = 4 << 20;
  // Envelopes in one field: stops a list of empty or tiny entries from
  // costing a std::string each (4 MiB of 4-byte length prefixes would be a
  // million of them).
  size_t max_entries = 65536;
};

// Compresses lists of envelopes into packed fields. Owns one zstd
// compression context, reused by every Pack call: a session packs many
// batches, and a fresh context would allocate its tables for each.
// Not thread-safe; one Packer per session (or per SyncServer).
class Packer {
 public:
  explicit Packer(int level = kDefaultPackLevel);
  ~Packer();
  Packer(Packer&&) noexcept;
  Packer& operator=(Packer&&) noexcept;
  Packer(const Packer&) = delete;
  Packer& operator=(const Packer&) = delete;

  // One zstd frame (with its content size in the header) of `envelopes`,
  // each as u32 LE length then its bytes. Unavailable if zstd cannot get
  // the memory it needs; the caller then sends the list unpacked.
  Result<std::string> Pack(const std::vector<std::string>& envelopes);

  // The form aidsync_log stores `envelope` in (see "the log's stored
  // envelopes" below), with this packer's context and level: a writer of many
  // changesets keeps one Packer(kStoredEnvelopeLevel), since a fresh zstd
  // context per changeset cost a local write 15%. Never fails: verbatim when
  // zstd cannot make it smaller or cannot get memory.
  std::string PackStored(std::string_view envelope);

 private:
  struct Free {
    void operator()(ZSTD_CCtx_s* cctx) const;
  };
  // The context, made on first use with this packer's level. False if zstd
  // could not allocate it.
  bool Ready();

  std::unique_ptr<ZSTD_CCtx_s, Free> cctx_;
  int level_;
  std::string scratch_;  // the length-prefixed list before compression; reused
};

// The envelopes of one packed field, in order. Corruption (naming the
// problem) when the bytes are not exactly one zstd frame, the frame does not
// declare its content size or declares more than the limit, it does not
// decompress to that size, the list inside is malformed (a length running
// past the end), holds no envelope, or holds more than max_entries.
// Thread-safe (each call uses its own decompression context).
Result<std::vector<std::string>> Unpack(std::string_view frame, const UnpackLimits& limits = {});

// ---- the log's stored envelopes (docs/FORMATS.md, aidsync_log.envelope) ----
//
// aidsync_log keeps each changeset's envelope as one zstd frame when that is
// smaller, else verbatim. Half a replica's bytes were envelopes, which
// Cap'n Proto leaves mostly padding and repeated ids; compressed, an import
// writes about half as much (docs/PERFORMANCE.md). The two forms are told
// apart by their first four bytes: a zstd frame starts with its magic number
// (28 B5 2F FD), an envelope with its segment count minus one (0).

// zstd level of stored envelopes: level 1 keeps nearly all of level 3's gain
// at the lowest cost on the writing thread.
constexpr int kStoredEnvelopeLevel = 1;

// The envelope that `stored` holds. Corruption when it is a zstd frame that
// is malformed, does not declare its size or declares more than `max_bytes`
// (a damaged file must not make a reader allocate gigabytes). Thread-safe.
Result<std::string> UnpackStoredEnvelope(std::string_view stored, size_t max_bytes);

}  // namespace aidsync
