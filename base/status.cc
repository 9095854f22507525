#include "base/status.h"

namespace aidsync {

const char* Status::CodeName(Code code) {
  switch (code) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument";
    case Code::kNotFound: return "not found";
    case Code::kAlreadyExists: return "already exists";
    case Code::kCorruption: return "corruption";
    case Code::kBadSignature: return "bad signature";
    case Code::kUnauthorized: return "unauthorized";
    case Code::kRuleViolation: return "rule violation";
    case Code::kFork: return "fork";
    case Code::kIOError: return "I/O error";
    case Code::kBusy: return "busy";
    case Code::kUnavailable: return "unavailable";
  }
  return "unknown";
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(CodeName(code_)) + ": " + message_;
}

}  // namespace aidsync
