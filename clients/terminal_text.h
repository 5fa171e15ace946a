// Untrusted text (step text, prompts, model names from a bundle) made safe to
// print: a hostile bundle must not be able to move the cursor, rewrite
// earlier lines or change the terminal's title with escape sequences.
//
// Thread-safety: pure functions.
#ifndef STEPPROOF_CLIENTS_TERMINAL_TEXT_H_
#define STEPPROOF_CLIENTS_TERMINAL_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace stepproof::clients {

// `text` with C0 controls (except '\n' and '\t'), DEL, C1 controls
// (U+0080..U+009F) and bytes that are not valid UTF-8 replaced by visible
// escapes ("\x1b", "\u009b", "\xff"); everything else unchanged.
std::string EscapeForTerminal(absl::string_view text);

// `text` escaped as above and with every non-empty line after the first
// prefixed by `indent`, for multi-line step text under a heading.
std::string IndentForTerminal(absl::string_view text, absl::string_view indent);

// Step text for display: surrounding whitespace (the blank lines a model
// puts between steps) trimmed, then IndentForTerminal. The committed text is
// unchanged; --json output shows it exactly.
std::string StepTextForTerminal(absl::string_view text,
                                absl::string_view indent);

// `text` escaped as above with every line, the first included, prefixed by
// `indent` (a block such as a signed note under a heading); ends with a
// newline.
std::string IndentLines(absl::string_view text, absl::string_view indent);

}  // namespace stepproof::clients

#endif  // STEPPROOF_CLIENTS_TERMINAL_TEXT_H_
