#include "sync/row_meta.h"

#include <algorithm>

namespace aidsync {

FieldState& RowMeta::Field(uint32_t column) {
  auto it = std::lower_bound(fields.begin(), fields.end(), column,
                             [](const FieldState& f, uint32_t c) { return f.column < c; });
  if (it == fields.end() || it->column != column) {
    it = fields.insert(it, FieldState{});
    it->column = column;
  }
  return *it;
}

int RowMeta::OpenConflicts() const {
  int n = 0;
  for (const auto& f : fields) {
    if (deleted ? !f.heads.empty() : f.heads.size() > 1) ++n;
  }
  return n;
}

std::string EncodeRowMeta(const RowMeta& meta) {
  std::string out;
  PutVarint(1, &out);
  PutVarint(meta.deleted ? 1 : 0, &out);
  PutVarint(meta.fields.size(), &out);
  for (const auto& f : meta.fields) {
    PutVarint(f.column, &out);
    PutVarint(f.heads.size(), &out);
    for (const auto& h : f.heads) {
      PutVarint(static_cast<uint64_t>(h.log_id), &out);
      PutVarint(h.hlc, &out);
      out.push_back(h.value ? 1 : 0);
      if (h.value) EncodeValue(*h.value, &out);
    }
    PutVarint(f.pending.size(), &out);
    for (const auto& d : f.pending) out.append(d.view());
  }
  return out;
}

Result<RowMeta> DecodeRowMeta(std::string_view in) {
  RowMeta meta;
  ASSIGN_OR_RETURN(uint64_t version, GetVarint(&in));
  if (version != 1) return Status::Corruption("row metadata has unknown format version");
  ASSIGN_OR_RETURN(uint64_t flags, GetVarint(&in));
  meta.deleted = (flags & 1) != 0;
  ASSIGN_OR_RETURN(uint64_t nfields, GetVarint(&in));
  if (nfields > in.size()) return Status::Corruption("row metadata: field count too large");
  meta.fields.resize(nfields);
  for (auto& f : meta.fields) {
    ASSIGN_OR_RETURN(uint64_t column, GetVarint(&in));
    f.column = static_cast<uint32_t>(column);
    ASSIGN_OR_RETURN(uint64_t nheads, GetVarint(&in));
    if (nheads > in.size()) return Status::Corruption("row metadata: head count too large");
    f.heads.resize(nheads);
    for (auto& h : f.heads) {
      ASSIGN_OR_RETURN(uint64_t log_id, GetVarint(&in));
      h.log_id = static_cast<int64_t>(log_id);
      ASSIGN_OR_RETURN(h.hlc, GetVarint(&in));
      if (in.empty()) return Status::Corruption("row metadata: truncated head");
      bool has_value = in.front() != 0;
      in.remove_prefix(1);
      if (has_value) {
        ASSIGN_OR_RETURN(Value v, DecodeValue(&in));
        h.value = std::move(v);
      }
    }
    ASSIGN_OR_RETURN(uint64_t npending, GetVarint(&in));
    if (npending * kDigestBytes > in.size()) return Status::Corruption("row metadata: truncated pending ids");
    f.pending.resize(npending);
    for (auto& d : f.pending) {
      std::copy_n(in.begin(), kDigestBytes, d.bytes.begin());
      in.remove_prefix(kDigestBytes);
    }
  }
  if (!in.empty()) return Status::Corruption("row metadata has trailing bytes");
  return meta;
}

}  // namespace aidsync
