// Command-line preparation for the client CLIs, before absl::ParseCommandLine:
//  - flag names may be spelled with dashes (--top-p, --tls-ca) as the docs
//    show; Abseil flag names are identifiers, so dashes in the name part
//    become underscores (values are never touched);
//  - unknown flags and bad values are reported as a Status, so the CLI exits
//    with its own usage status (absl's parser exits with 1, which
//    `stepproof-audit` reserves for "not verified").
// Accepts exactly the syntax absl accepts: -f / --f, --f=v, --f v
// (non-bool), --nof (bool), everything after "--" positional.
//
// Thread-safety: reads (and may set) the process's flags; main() only.
#ifndef STEPPROOF_CLIENTS_COMMAND_LINE_H_
#define STEPPROOF_CLIENTS_COMMAND_LINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stepproof::clients {

// The arguments (argv[0] included) with flag names normalised. INVALID_ARGUMENT
// naming the flag: "unknown flag --foo", "missing value for --interval",
// "bad value for --count: ...". Flag values may have been set on success;
// absl::ParseCommandLine sets them again from the result.
absl::StatusOr<std::vector<std::string>> PrepareCommandLine(int argc,
                                                            char** argv);

// True if the (prepared) arguments ask for help: -h, --help or the command
// "help". The CLIs answer it themselves with exit status 0 (absl's --help
// exits with 1, which `stepproof-audit` reserves for "not verified").
bool WantsHelp(const std::vector<std::string>& args);

// The flags defined in source files whose path contains `file_substring`,
// one per entry sorted by name and spelled with dashes:
//   --top-p P   generate: nucleus sampling threshold (default -1)
std::string DescribeFlags(absl::string_view file_substring);

// What a CLI's main() gets from ParseCliCommandLine.
struct CliCommandLine {
  bool help_printed = false;            // --help was answered: exit 0
  std::vector<std::string> positional;  // argv[0], then the operands
};

// The front of a CLI's main(): sets the usage message, makes help list only
// the flags defined in files whose path contains `main_file`, prepares the
// arguments (PrepareCommandLine), answers --help on stdout as
// "<program>: <usage>\n\nflags:\n<DescribeFlags>", and parses the flags.
// INVALID_ARGUMENT as PrepareCommandLine. Call once, from main().
absl::StatusOr<CliCommandLine> ParseCliCommandLine(int argc, char** argv,
                                                   absl::string_view program,
                                                   absl::string_view usage,
                                                   absl::string_view main_file);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_COMMAND_LINE_H_
