// The `topics` filter of /rest/events (shared/reference/openhab.md §3), in both of openHAB's
// semantics: 3.3 and later turn each comma-separated token `t` into the regular expression
// `t.replace("*", ".*") + "$"` matched against the whole topic (so `*` spans '/'), and answer
// 400 for a token with characters outside [\w*/,:\-\s]; earlier versions matched prefixes.
// Thread-safe (immutable after Parse).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace iothub::openhab {

enum class FilterSemantics { kRegex /* 3.3+ */, kPrefix /* before 3.3 */ };

class TopicFilter {
 public:
  // An empty filter matches every topic. Errors (code "bad_filter") name the bad character.
  static Result<TopicFilter> Parse(std::string_view topics, FilterSemantics semantics);

  bool Matches(std::string_view topic) const;

 private:
  FilterSemantics semantics_ = FilterSemantics::kRegex;
  std::vector<std::string> tokens_;
};

// What the client asks for: item and thing events, written so that both semantics select
// them (a prefix token for old servers, a wildcard token for new ones; each is inert on the
// other). Events are still checked by type after decoding.
std::string ClientTopicFilter();

}  // namespace iothub::openhab
