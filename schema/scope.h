// Jurisdiction scopes: paths such as "430123" (county), "430123/05" (township),
// "430123/05/017" (village). Ancestry is by whole path components, so
// "430123/05" is an ancestor of "430123/05/017" but not of "430123/050".
#pragma once

#include <string_view>

#include "base/status.h"

namespace aidsync {

// Limits on scope strings: they come from certificates and changesets.
constexpr size_t kMaxScopeBytes = 128;
constexpr size_t kMaxScopeDepth = 8;

// OK if `scope` is 1..8 non-empty components of ASCII letters and digits
// separated by '/', at most 128 bytes; InvalidArgument naming the problem.
Status ValidateScope(std::string_view scope);

// True if `ancestor` equals `scope` or is a whole-component prefix of it.
// Both must be valid scopes.
bool ScopeContains(std::string_view ancestor, std::string_view scope);

// OK if `code` is a station code: 1..16 ASCII letters, digits or '-'.
Status ValidateStationCode(std::string_view code);

}  // namespace aidsync
