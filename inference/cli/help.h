// --help for the programs that parse flags with absl::ParseCommandLine
// (stepproofd, stepproof-engine, the benchmarks, test-vector generators).
// Abseil's own --help handler prints the flags and exits with status 1;
// asking for help is not an error, so such a main() calls this first:
//
//   absl::SetProgramUsageMessage("...");
//   if (stepproof::AnswerHelp(argc, argv, "inference_bench.")) return 0;
//   absl::ParseCommandLine(argc, argv);
//
// It prints the usage message and the flags defined in files whose path
// contains `filter` (absl's listing) on stdout. The client CLIs answer
// --help through clients/command_line.h instead. Header-only; Abseil only
// (inference/ may depend on nothing else), so services/, bench/ and tests/
// can all use it.
#ifndef STEPPROOF_INFERENCE_CLI_HELP_H_
#define STEPPROOF_INFERENCE_CLI_HELP_H_

#include <iostream>

#include "absl/flags/internal/program_name.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/usage.h"
#include "absl/strings/string_view.h"

namespace stepproof {

// True (after printing the help) if argv asks for it: --help, -help, -h or
// --helpfull before any "--".
inline bool AnswerHelp(int argc, char** argv, absl::string_view filter) {
  for (int i = 1; i < argc && absl::string_view(argv[i]) != "--"; ++i) {
    const absl::string_view a = argv[i];
    if (a != "--help" && a != "-help" && a != "-h" && a != "--helpfull") continue;
    absl::flags_internal::SetProgramInvocationName(argv[0]);
    absl::flags_internal::FlagsHelp(std::cout, filter, absl::flags_internal::HelpFormat::kHumanReadable,
                                    absl::ProgramUsageMessage());
    return true;
  }
  return false;
}

}  // namespace stepproof

#endif  // STEPPROOF_INFERENCE_CLI_HELP_H_
