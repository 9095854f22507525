#include "schema/scope.h"

#include <cctype>
#include <string>

namespace aidsync {

Status ValidateScope(std::string_view scope) {
  if (scope.empty()) return Status::InvalidArgument("scope is empty");
  if (scope.size() > kMaxScopeBytes) return Status::InvalidArgument("scope is longer than 128 bytes");
  size_t depth = 1;
  size_t component = 0;
  for (char c : scope) {
    if (c == '/') {
      if (component == 0) return Status::InvalidArgument("scope '" + std::string(scope) + "' has an empty component");
      component = 0;
      ++depth;
      continue;
    }
    if (!std::isalnum(static_cast<unsigned char>(c)))
      return Status::InvalidArgument("scope '" + std::string(scope) +
                                     "' may hold only letters, digits and '/'");
    ++component;
  }
  if (component == 0) return Status::InvalidArgument("scope '" + std::string(scope) + "' ends with '/'");
  if (depth > kMaxScopeDepth) return Status::InvalidArgument("scope is deeper than 8 levels");
  return Status::OK();
}

bool ScopeContains(std::string_view ancestor, std::string_view scope) {
  if (scope.size() < ancestor.size() || scope.substr(0, ancestor.size()) != ancestor) return false;
  return scope.size() == ancestor.size() || scope[ancestor.size()] == '/';
}

Status ValidateStationCode(std::string_view code) {
  if (code.empty() || code.size() > 16)
    return Status::InvalidArgument("station code must be 1 to 16 characters");
  for (char c : code) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-')
      return Status::InvalidArgument("station code '" + std::string(code) +
                                     "' may hold only letters, digits and '-'");
  }
  return Status::OK();
}

}  // namespace aidsync
