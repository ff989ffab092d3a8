#include "openhab/topic_filter.h"

#include <fmt/format.h>

namespace iothub::openhab {
namespace {

bool AllowedFilterChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '*' || c == '/' || c == ',' || c == ':' || c == '-' || c == ' ' || c == '\t' ||
         c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// `pattern` with '*' as "any run of characters" matched against the whole of `text`.
bool WildcardMatch(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

Result<TopicFilter> TopicFilter::Parse(std::string_view topics, FilterSemantics semantics) {
  TopicFilter filter;
  filter.semantics_ = semantics;
  if (semantics == FilterSemantics::kRegex) {
    for (const char c : topics) {
      if (!AllowedFilterChar(c)) {
        return MakeError("bad_filter",
                         fmt::format("topic filter contains '{}': only letters, digits, '_', "
                                     "'*', '/', ',', ':', '-' and spaces are allowed",
                                     c));
      }
    }
  }
  while (!topics.empty()) {
    const std::size_t comma = topics.find(',');
    const std::string_view token = Trim(topics.substr(0, comma));
    if (!token.empty()) filter.tokens_.emplace_back(token);
    if (comma == std::string_view::npos) break;
    topics.remove_prefix(comma + 1);
  }
  return filter;
}

bool TopicFilter::Matches(std::string_view topic) const {
  if (tokens_.empty()) return true;
  for (const auto& token : tokens_) {
    if (semantics_ == FilterSemantics::kPrefix ? topic.starts_with(token)
                                               : WildcardMatch(token, topic)) {
      return true;
    }
  }
  return false;
}

std::string ClientTopicFilter() {
  return "openhab/items/*,openhab/things/*,openhab/items/,openhab/things/";
}

}  // namespace iothub::openhab
