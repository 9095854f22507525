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

namespace {

// Head kinds of format 2: whether the head carries a value, and whether its
// version is written out or is the blob's base version.
constexpr uint8_t kHasValue = 1;
constexpr uint8_t kExplicitVersion = 2;

// The version most heads share: a row written by one changeset (every new
// row) has it in all of its fields, so format 2 writes it once.
const Head* BaseHead(const RowMeta& meta) {
  for (const auto& f : meta.fields)
    if (!f.heads.empty()) return &f.heads.front();
  return nullptr;
}

void EncodePending(const FieldState& f, std::string* out) {
  PutVarint(f.pending.size(), out);
  for (const auto& d : f.pending) out->append(d.view());
}

Status DecodePending(std::string_view* in, FieldState* f) {
  ASSIGN_OR_RETURN(uint64_t npending, GetVarint(in));
  if (npending > in->size() / kDigestBytes) return Status::Corruption("row metadata: truncated pending ids");
  f->pending.resize(npending);
  for (auto& d : f->pending) {
    std::copy_n(in->begin(), kDigestBytes, d.bytes.begin());
    in->remove_prefix(kDigestBytes);
  }
  return Status::OK();
}

Result<std::optional<Value>> DecodeHeadValue(std::string_view* in, bool has_value) {
  if (!has_value) return std::optional<Value>();
  ASSIGN_OR_RETURN(Value v, DecodeValue(in));
  return std::optional<Value>(std::move(v));
}

// One head: format 1 writes (log id, HLC, has-value byte); format 2 a kind
// byte and the version only when it is not `base`.
Status DecodeHead(std::string_view* in, const Head* base, Head* h) {
  if (base == nullptr) {
    ASSIGN_OR_RETURN(uint64_t log_id, GetVarint(in));
    h->log_id = static_cast<int64_t>(log_id);
    ASSIGN_OR_RETURN(h->hlc, GetVarint(in));
    if (in->empty()) return Status::Corruption("row metadata: truncated head");
    const bool has_value = in->front() != 0;
    in->remove_prefix(1);
    ASSIGN_OR_RETURN(h->value, DecodeHeadValue(in, has_value));
    return Status::OK();
  }
  if (in->empty()) return Status::Corruption("row metadata: truncated head");
  const uint8_t kind = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  if (kind > (kHasValue | kExplicitVersion)) return Status::Corruption("row metadata: unknown head kind");
  h->log_id = base->log_id;
  h->hlc = base->hlc;
  if (kind & kExplicitVersion) {
    ASSIGN_OR_RETURN(uint64_t log_id, GetVarint(in));
    h->log_id = static_cast<int64_t>(log_id);
    ASSIGN_OR_RETURN(h->hlc, GetVarint(in));
  }
  ASSIGN_OR_RETURN(h->value, DecodeHeadValue(in, (kind & kHasValue) != 0));
  return Status::OK();
}

// The fields of either format; `base` is null for format 1 (written before
// issue 7; still read, never written).
Status DecodeFields(std::string_view* in, const Head* base, RowMeta* meta) {
  for (auto& f : meta->fields) {
    ASSIGN_OR_RETURN(uint64_t column, GetVarint(in));
    f.column = static_cast<uint32_t>(column);
    ASSIGN_OR_RETURN(uint64_t nheads, GetVarint(in));
    if (nheads > in->size()) return Status::Corruption("row metadata: head count too large");
    f.heads.resize(nheads);
    for (auto& h : f.heads) RETURN_IF_ERROR(DecodeHead(in, base, &h));
    RETURN_IF_ERROR(DecodePending(in, &f));
  }
  return Status::OK();
}

}  // namespace

std::string EncodeRowMeta(const RowMeta& meta) {
  const Head* base = BaseHead(meta);
  const int64_t base_log_id = base ? base->log_id : 0;
  const uint64_t base_hlc = base ? base->hlc : 0;
  std::string out;
  PutVarint(2, &out);
  PutVarint(meta.deleted ? 1 : 0, &out);
  PutVarint(static_cast<uint64_t>(base_log_id), &out);
  PutVarint(base_hlc, &out);
  PutVarint(meta.fields.size(), &out);
  for (const auto& f : meta.fields) {
    PutVarint(f.column, &out);
    PutVarint(f.heads.size(), &out);
    for (const auto& h : f.heads) {
      const bool is_base = h.log_id == base_log_id && h.hlc == base_hlc;
      out.push_back(static_cast<char>((h.value ? kHasValue : 0) | (is_base ? 0 : kExplicitVersion)));
      if (!is_base) {
        PutVarint(static_cast<uint64_t>(h.log_id), &out);
        PutVarint(h.hlc, &out);
      }
      if (h.value) EncodeValue(*h.value, &out);
    }
    EncodePending(f, &out);
  }
  return out;
}

Result<RowMeta> DecodeRowMeta(std::string_view in) {
  RowMeta meta;
  ASSIGN_OR_RETURN(uint64_t version, GetVarint(&in));
  if (version != 1 && version != 2) return Status::Corruption("row metadata has unknown format version");
  ASSIGN_OR_RETURN(uint64_t flags, GetVarint(&in));
  meta.deleted = (flags & 1) != 0;
  Head base;
  if (version == 2) {
    ASSIGN_OR_RETURN(uint64_t log_id, GetVarint(&in));
    base.log_id = static_cast<int64_t>(log_id);
    ASSIGN_OR_RETURN(base.hlc, GetVarint(&in));
  }
  ASSIGN_OR_RETURN(uint64_t nfields, GetVarint(&in));
  if (nfields > in.size()) return Status::Corruption("row metadata: field count too large");
  meta.fields.resize(nfields);
  RETURN_IF_ERROR(DecodeFields(&in, version == 1 ? nullptr : &base, &meta));
  if (!in.empty()) return Status::Corruption("row metadata has trailing bytes");
  return meta;
}

}  // namespace aidsync
