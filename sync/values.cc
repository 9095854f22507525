#include "sync/values.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace aidsync {

std::string Value::ToDisplay() const {
  if (auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto* d = std::get_if<double>(&v)) {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof buf, *d);
    return std::string(buf, res.ptr);
  }
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  return "";
}

Result<Value> ParseValue(const ColumnDef& column, std::string_view text) {
  switch (column.type) {
    case ColumnType::kText:
      return Value::Text(std::string(text));
    case ColumnType::kInteger: {
      if (text.empty()) return Value::Null();
      int64_t i = 0;
      auto res = std::from_chars(text.data(), text.data() + text.size(), i);
      if (res.ec != std::errc() || res.ptr != text.data() + text.size())
        return Status::InvalidArgument("column '" + column.name + "' is INTEGER; '" +
                                       std::string(text) + "' is not an integer");
      return Value::Integer(i);
    }
    case ColumnType::kReal: {
      if (text.empty()) return Value::Null();
      double d = 0;
      auto res = std::from_chars(text.data(), text.data() + text.size(), d);
      if (res.ec != std::errc() || res.ptr != text.data() + text.size() || !std::isfinite(d))
        return Status::InvalidArgument("column '" + column.name + "' is REAL; '" +
                                       std::string(text) + "' is not a number");
      return Value::Real(d);
    }
  }
  return Status::InvalidArgument("unknown column type");
}

Status CheckValueType(const ColumnDef& column, const Value& value) {
  bool fits = value.is_null() ||
              (column.type == ColumnType::kInteger && std::holds_alternative<int64_t>(value.v)) ||
              (column.type == ColumnType::kReal && std::holds_alternative<double>(value.v)) ||
              (column.type == ColumnType::kText && std::holds_alternative<std::string>(value.v));
  if (fits) return Status::OK();
  return Status::InvalidArgument("column '" + column.name + "' is " + ColumnTypeName(column.type) +
                                 "; the value '" + value.ToDisplay() + "' is of another type");
}

size_t Utf8SequenceLength(std::string_view s) {
  if (s.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    if (b0 == 0xe0) lo = 0xa0;  // overlong
    if (b0 == 0xed) hi = 0x9f;  // UTF-16 surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    if (b0 == 0xf0) lo = 0x90;  // overlong
    if (b0 == 0xf4) hi = 0x8f;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t i = 2; i < len; ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
  return len;
}

Status CheckTextContent(const ColumnDef& column, std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    size_t len = Utf8SequenceLength(text.substr(i));
    if (len == 0)
      return Status::InvalidArgument("column '" + column.name + "': the value is not valid UTF-8 (at byte " +
                                     std::to_string(i) + ")");
    const auto b = static_cast<unsigned char>(text[i]);
    bool control = (len == 1 && (b < 0x20 || b == 0x7f)) ||
                   (len == 2 && b == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0);
    if (control && !(column.free_text && (b == '\n' || b == '\t'))) {
      char code[8];
      std::snprintf(code, sizeof code, "U+%04X", len == 1 ? b : static_cast<unsigned char>(text[i + 1]));
      return Status::InvalidArgument("column '" + column.name + "': the value holds control character " + code +
                                     " at byte " + std::to_string(i) +
                                     (column.free_text ? "; only newlines and tabs are allowed in it"
                                                       : "; this column takes one line of text without controls"));
    }
    i += len;
  }
  return Status::OK();
}

Status CheckValueAllowed(const ColumnDef& column, const Value& value) {
  if (value.is_null()) return Status::OK();
  if (const auto* s = std::get_if<std::string>(&value.v); s && s->size() > kMaxTextValueBytes)
    return Status::InvalidArgument("column '" + column.name + "': a value of " + std::to_string(s->size()) +
                                   " bytes is over the limit of " + std::to_string(kMaxTextValueBytes));
  if (const auto* s = std::get_if<std::string>(&value.v)) RETURN_IF_ERROR(CheckTextContent(column, *s));
  if (!column.allowed.empty()) {
    const auto* s = std::get_if<std::string>(&value.v);
    bool ok = false;
    for (const auto& a : column.allowed) ok = ok || (s && *s == a);
    if (!ok) {
      std::string list;
      for (const auto& a : column.allowed) list += (list.empty() ? "" : ", ") + a;
      return Status::InvalidArgument("column '" + column.name + "' must be one of: " + list + " (got '" +
                                     value.ToDisplay() + "')");
    }
  }
  if (column.range) {
    const auto* i = std::get_if<int64_t>(&value.v);
    if (i && (*i < column.range->first || *i > column.range->second))
      return Status::InvalidArgument("column '" + column.name + "' must be between " +
                                     std::to_string(column.range->first) + " and " +
                                     std::to_string(column.range->second) + " (got " +
                                     std::to_string(*i) + ")");
  }
  return Status::OK();
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

Result<uint64_t> GetVarint(std::string_view* in) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    auto byte = static_cast<uint8_t>(in->front());
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return result;
  }
  return Status::Corruption("truncated or overlong varint");
}

void EncodeValue(const Value& value, std::string* out) {
  if (auto* i = std::get_if<int64_t>(&value.v)) {
    out->push_back(1);
    PutVarint((static_cast<uint64_t>(*i) << 1) ^ static_cast<uint64_t>(*i >> 63), out);
  } else if (auto* d = std::get_if<double>(&value.v)) {
    out->push_back(2);
    char buf[8];
    std::memcpy(buf, d, 8);  // x86-64 and ARM64 are little-endian; documented as LE
    out->append(buf, 8);
  } else if (auto* s = std::get_if<std::string>(&value.v)) {
    out->push_back(3);
    PutVarint(s->size(), out);
    out->append(*s);
  } else {
    out->push_back(0);
  }
}

Result<Value> DecodeValue(std::string_view* in) {
  if (in->empty()) return Status::Corruption("value: missing tag");
  char tag = in->front();
  in->remove_prefix(1);
  switch (tag) {
    case 0: return Value::Null();
    case 1: {
      ASSIGN_OR_RETURN(uint64_t z, GetVarint(in));
      return Value::Integer(static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1)));
    }
    case 2: {
      if (in->size() < 8) return Status::Corruption("value: truncated REAL");
      double d;
      std::memcpy(&d, in->data(), 8);
      in->remove_prefix(8);
      return Value::Real(d);
    }
    case 3: {
      ASSIGN_OR_RETURN(uint64_t n, GetVarint(in));
      if (n > in->size()) return Status::Corruption("value: truncated TEXT");
      Value v = Value::Text(std::string(in->substr(0, n)));
      in->remove_prefix(n);
      return v;
    }
    default: return Status::Corruption("value: unknown tag");
  }
}

}  // namespace aidsync
