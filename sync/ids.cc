#include "sync/ids.h"

#include <cstdint>

namespace aidsync {

std::string NewRowId(Clock& clock, RandomSource& random) {
  uint8_t b[16];
  random.Fill(b, sizeof b);
  auto ms = static_cast<uint64_t>(clock.NowMillis());
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0f));  // version 7
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // RFC 4122 variant
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

Status ValidateRowId(std::string_view id) {
  if (id.empty() || id.size() > 64) return Status::InvalidArgument("a row id must be 1 to 64 characters");
  for (char c : id) {
    if (c <= ' ' || c > '~')
      return Status::InvalidArgument("row id '" + std::string(id) +
                                     "' may hold only printable ASCII without spaces");
  }
  if (id == "new") return Status::InvalidArgument("'new' is not a row id: it asks for a fresh one");
  return Status::OK();
}

}  // namespace aidsync
