// Field values: what a replicated column holds, how text from the command line
// or an import file becomes one, and their compact binary form in row metadata.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "base/status.h"
#include "schema/legal_aid.h"

namespace aidsync {

// NULL, INTEGER, REAL or TEXT. Value type; compares by kind then content.
struct Value {
  std::variant<std::monostate, int64_t, double, std::string> v;

  static Value Null() { return Value{}; }
  static Value Integer(int64_t i) { return Value{i}; }
  static Value Real(double d) { return Value{d}; }
  static Value Text(std::string s) { return Value{std::move(s)}; }

  bool is_null() const { return std::holds_alternative<std::monostate>(v); }
  bool operator==(const Value&) const = default;
  // Human-readable form: text as is, numbers in decimal, NULL as "".
  std::string ToDisplay() const;
};

// Largest TEXT value a local write accepts: far above any real record field,
// and small enough that any row fits one bounded changeset.
constexpr size_t kMaxTextValueBytes = 64 * 1024;

// Parses command-line or import text for `column`. Empty text is NULL for
// INTEGER and REAL columns and the empty string for TEXT. InvalidArgument
// naming the column when the text is not of the column's type.
Result<Value> ParseValue(const ColumnDef& column, std::string_view text);

// OK if `value` has the column's type (NULL fits every column).
Status CheckValueType(const ColumnDef& column, const Value& value);

// OK if `value` is one of the column's allowed values, inside its range, and
// (for TEXT) at most kMaxTextValueBytes of valid UTF-8 without control
// characters (CheckTextContent).
// Checked on local writes only: received changesets are signed facts.
Status CheckValueAllowed(const ColumnDef& column, const Value& value);

// OK if `text` is valid UTF-8 (no overlong forms, surrogates or code points
// past U+10FFFF) and holds no control character: no NUL, no other C0
// control, DEL or C1 control (U+0080-U+009F), except newline and tab in a
// free-text column (ColumnDef::free_text). Such characters drive terminals
// (escape sequences) and forge lines wherever a value is shown. The error
// names the column and the byte offset, never echoes the value.
Status CheckTextContent(const ColumnDef& column, std::string_view text);

// The length of the valid UTF-8 sequence at the front of `s` (1-4), or 0 if
// `s` is empty or does not start with one.
size_t Utf8SequenceLength(std::string_view s);

// Appends the binary form of `value` to `out`: a tag byte (0 NULL, 1 INTEGER
// as zigzag varint, 2 REAL as 8 little-endian bytes, 3 TEXT as varint length +
// bytes). See docs/FORMATS.md.
void EncodeValue(const Value& value, std::string* out);
// Reads one value from the front of `in`, advancing it. Corruption if malformed.
Result<Value> DecodeValue(std::string_view* in);

// Unsigned LEB128 varints, used by the row metadata format.
void PutVarint(uint64_t v, std::string* out);
Result<uint64_t> GetVarint(std::string_view* in);

}  // namespace aidsync
