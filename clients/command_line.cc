#include "clients/command_line.h"

#include <algorithm>
#include <iostream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stepproof::clients {
namespace {

bool IsUsageFlag(absl::string_view name) {
  return name == "help" || name == "helpfull" || name == "helpshort" ||
         name == "helppackage" || name == "helpon" || name == "helpmatch" ||
         name == "version" || name == "only_check_args";
}

}  // namespace

absl::StatusOr<std::vector<std::string>> PrepareCommandLine(int argc,
                                                            char** argv) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(argc));
  if (argc > 0) out.emplace_back(argv[0]);
  bool positional_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (positional_only || arg.size() < 2 || arg[0] != '-') {
      out.push_back(std::move(arg));  // positional, or "-"
      continue;
    }
    if (arg == "--") {
      positional_only = true;
      out.push_back(std::move(arg));
      continue;
    }
    size_t dashes = arg[1] == '-' ? 2 : 1;
    size_t eq = arg.find('=');
    size_t name_end = eq == std::string::npos ? arg.size() : eq;
    std::replace(arg.begin() + static_cast<std::ptrdiff_t>(dashes),
                 arg.begin() + static_cast<std::ptrdiff_t>(name_end), '-', '_');
    std::string name = arg.substr(dashes, name_end - dashes);
    bool has_value = eq != std::string::npos;
    std::string value = has_value ? arg.substr(eq + 1) : "";
    std::string shown = absl::StrCat("--", name);
    std::replace(shown.begin() + 2, shown.end(), '_', '-');
    out.push_back(arg);
    if (IsUsageFlag(name)) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      absl::CommandLineFlag* negated =
          absl::FindCommandLineFlag(absl::string_view(name).substr(2));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        if (has_value) {
          return absl::InvalidArgumentError(
              absl::StrCat(shown, " takes no value"));
        }
        continue;
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", shown));
    }
    if (!has_value) {
      if (flag->IsOfType<bool>()) continue;
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(
            absl::StrCat("missing value for ", shown));
      }
      value = argv[++i];
      out.push_back(value);  // a value, never normalised
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value for ", shown, ": ", error));
    }
  }
  return out;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return false;
    if (a == "-h" || a == "--help" || a == "-help") return true;
  }
  return args.size() >= 2 && args[1] == "help";
}

std::string DescribeFlags(absl::string_view file_substring) {
  std::vector<std::pair<std::string, std::string>> lines;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), file_substring)) continue;
    std::string shown(name);
    std::replace(shown.begin(), shown.end(), '_', '-');
    std::string value = flag->DefaultValue();
    std::string line = absl::StrCat("  --", shown);
    if (flag->IsOfType<std::string>()) {
      value = absl::StrCat("\"", value, "\"");
    }
    absl::StrAppend(&line, "\n      ", flag->Help(), " (default ", value,
                    ")\n");
    lines.emplace_back(shown, std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& [name, line] : lines) out += line;
  return out;
}

absl::StatusOr<CliCommandLine> ParseCliCommandLine(int argc, char** argv,
                                                   absl::string_view program,
                                                   absl::string_view usage,
                                                   absl::string_view main_file) {
  absl::SetProgramUsageMessage(usage);
  absl::FlagsUsageConfig config;
  std::string file(main_file);
  config.contains_help_flags = [file](absl::string_view path) {
    return absl::StrContains(path, file);
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);

  absl::StatusOr<std::vector<std::string>> prepared = PrepareCommandLine(argc, argv);
  if (!prepared.ok()) return prepared.status();
  CliCommandLine result;
  if (WantsHelp(*prepared)) {
    std::cout << program << ": " << usage << "\n\nflags:\n" << DescribeFlags(main_file);
    result.help_printed = true;
    return result;
  }
  std::vector<char*> args;
  for (std::string& a : *prepared) args.push_back(a.data());
  for (char* p : absl::ParseCommandLine(static_cast<int>(args.size()), args.data())) {
    result.positional.emplace_back(p);
  }
  return result;
}

}  // namespace stepproof::clients
