// Replacing a file so that a reader, or the next start after a crash or power cut, finds the
// old contents or the whole new ones, never a torn file. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace iothub {

// Writes `bytes` to a hidden temp file next to `path` with permissions `mode` (whatever the
// umask), fsyncs it, renames it over `path` and fsyncs the directory. Errors (code "IoError")
// name the path and the system's reason; the temp file is removed on failure.
Status WriteFileAtomically(const std::string& path, std::string_view bytes, unsigned mode);

}  // namespace iothub
