// Whole-file reads and writes for the client CLIs, with errors as values
// naming the path and the OS error.
//
// Thread-safety: functions are independent; concurrent writes to one path race
// like any two writers would.
#ifndef STEPPROOF_CLIENTS_FILE_IO_H_
#define STEPPROOF_CLIENTS_FILE_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace stepproof::clients {

// The bytes of `path`. NOT_FOUND if it does not exist; INTERNAL naming the
// errno text for other failures.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

// Writes `contents` to `path` atomically (a temporary file beside it, then
// rename), so a reader never sees half a file. INTERNAL naming the errno text
// on failure.
absl::Status WriteStringToFile(const std::string& path,
                               const std::string& contents);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_FILE_IO_H_
