// Row ids made without coordination: UUIDv7 text (RFC 9562), 48-bit Unix
// milliseconds then 74 random bits, so ids sort roughly by creation time and
// collide with negligible probability across all stations.
#pragma once

#include <string>
#include <string_view>

#include "base/env.h"
#include "base/status.h"

namespace aidsync {

// A new UUIDv7 in canonical lowercase text (36 characters).
std::string NewRowId(Clock& clock, RandomSource& random);

// OK if `id` can be a row id: 1..64 printable ASCII characters without
// spaces (legacy imports may bring their own ids); InvalidArgument otherwise.
Status ValidateRowId(std::string_view id);

}  // namespace aidsync
