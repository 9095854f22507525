// Making file-system changes survive power loss. A file's own fsync does not
// persist its directory entry: after creating or renaming a file, the
// directory must be synced too, or a power cut can leave the old name (or no
// name at all) behind.
#pragma once

#include <string>

#include "base/status.h"

namespace aidsync {

// fsyncs the directory that holds `path`. IOError naming it on failure.
Status SyncParentDirectory(const std::string& path);

}  // namespace aidsync
