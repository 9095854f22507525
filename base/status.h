// Status and Result<T>: the one error style of aidsync.
//
// Every fallible function returns a Status (no value) or a Result<T> (a value or
// a Status). A Status carries a named Code and a message written for the person
// who has to act on it ("table 'lawers' is not in the schema"), never a bare
// errno. Expected absence is std::optional, not an error.
//
// Codes are never combined arithmetically: a failure has exactly one code.
// Status and Result are plain values, cheap to move, safe to share across
// threads once built.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace aidsync {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller's input is wrong (bad column, bad value, bad flag)
    kNotFound,         // a named thing does not exist (row, table, file, station code)
    kAlreadyExists,    // creating something that is there already (data dir, invite)
    kCorruption,       // stored or received bytes fail a structural or integrity check
    kBadSignature,     // a signature does not verify
    kUnauthorized,     // a valid key acting outside what its certificate grants
    kRuleViolation,    // a legal-aid domain rule refuses the write
    kFork,             // one key signed two different changesets at one chain position
    kIOError,          // the file system or SQLite failed (full disk, read-only, ...)
    kBusy,             // another process holds the database longer than we wait
    kUnavailable,      // a peer or resource cannot be reached now; retrying may help
  };

  // OK status. Cheap.
  Status() = default;

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status AlreadyExists(std::string msg) { return Status(Code::kAlreadyExists, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status BadSignature(std::string msg) { return Status(Code::kBadSignature, std::move(msg)); }
  static Status Unauthorized(std::string msg) { return Status(Code::kUnauthorized, std::move(msg)); }
  static Status RuleViolation(std::string msg) { return Status(Code::kRuleViolation, std::move(msg)); }
  static Status Fork(std::string msg) { return Status(Code::kFork, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Busy(std::string msg) { return Status(Code::kBusy, std::move(msg)); }
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message"; the code is unchanged.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

  // Short name of the code ("corruption", "bad signature", ...), for logs and counters.
  static const char* CodeName(Code code);

  // "<code name>: <message>", or "ok".
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value of type T, or the Status that explains why there is none.
// Accessing value() of a failed Result is a programming error (asserts).
template <typename T>
class Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(data_).ok() && "a Result built from a Status must be an error");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { assert(ok()); return std::get<T>(data_); }
  const T& value() const& { assert(ok()); return std::get<T>(data_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace aidsync

// Early-return helpers. They keep call sites short without hiding control flow
// behind anything cleverer than a return.
#define AIDSYNC_CONCAT_INNER(a, b) a##b
#define AIDSYNC_CONCAT(a, b) AIDSYNC_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::aidsync::Status _st = (expr);                  \
    if (!_st.ok()) return _st;                       \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr)        \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(AIDSYNC_CONCAT(_result_, __LINE__), lhs, expr)
