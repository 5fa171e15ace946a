// The DeepSeek-R1 chat template and its special-token strings.
//
// The prompt is plain text containing special-token strings; it is encoded
// with BpeTokenizer::Encode(text, /*parse_special=*/true). The bars are
// U+FF5C FULLWIDTH VERTICAL LINE and the word separator is U+2581 LOWER ONE
// EIGHTH BLOCK, exactly as in the DeepSeek-R1 vocabulary.

#ifndef STEPPROOF_INFERENCE_CHAT_TEMPLATE_H_
#define STEPPROOF_INFERENCE_CHAT_TEMPLATE_H_

#include <string>
#include <string_view>

namespace stepproof::inference {

inline constexpr std::string_view kBeginOfSentence =
    "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
inline constexpr std::string_view kEndOfSentence =
    "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
inline constexpr std::string_view kUser = "<\xEF\xBD\x9CUser\xEF\xBD\x9C>";
inline constexpr std::string_view kAssistant =
    "<\xEF\xBD\x9C" "Assistant\xEF\xBD\x9C>";
inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";

// Returns kBeginOfSentence + system + kUser + user + kAssistant + "<think>\n".
// The model's output therefore starts inside the think block. `system` may be
// empty. The texts are inserted verbatim (no escaping: a user text that
// contains a special-token string will be encoded as that special token).
std::string FormatR1Prompt(std::string_view system, std::string_view user);

}  // namespace stepproof::inference

#endif  // STEPPROOF_INFERENCE_CHAT_TEMPLATE_H_
