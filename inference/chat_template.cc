#include "inference/chat_template.h"

namespace stepproof::inference {

std::string FormatR1Prompt(std::string_view system, std::string_view user) {
  std::string out;
  out.reserve(kBeginOfSentence.size() + system.size() + kUser.size() +
              user.size() + kAssistant.size() + kThinkOpen.size() + 1);
  out.append(kBeginOfSentence);
  out.append(system);
  out.append(kUser);
  out.append(user);
  out.append(kAssistant);
  out.append(kThinkOpen);
  out.push_back('\n');
  return out;
}

}  // namespace stepproof::inference
