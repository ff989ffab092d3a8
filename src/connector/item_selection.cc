#include "connector/item_selection.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/strings.h"

namespace iothub::connector {
namespace {

bool IsGlob(std::string_view text) { return text.find_first_of("*?") != std::string_view::npos; }

// Letters, digits and `_` (openHAB's item-name characters), plus the glob's `*` and `?`.
bool IsNameOrGlob(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '*' || c == '?';
  });
}

constexpr char kExpected[] =
    "expected an item name, a glob of letters, digits, '_', '*' and '?' (Sensor_*), "
    "@Group or #Tag";

}  // namespace

bool GlobMatch(std::string_view glob, std::string_view text) {
  // Greedy with one backtrack point: the last `*` seen and where in `text` it started.
  std::size_t g = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t mark = 0;
  while (t < text.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == text[t])) {
      ++g;
      ++t;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = t;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

bool IsPlainGroup(const openhab::Item& item) {
  return item.type == "Group" && item.group_type.empty();
}

const std::set<std::string, std::less<>>& GroupMembership::AncestorsOf(
    const std::string& group) const {
  if (const auto it = ancestors_.find(group); it != ancestors_.end()) return it->second;
  std::set<std::string, std::less<>> found;
  std::vector<const std::string*> pending;
  const auto push_parents = [&](const std::string& name) {
    const auto it = items_.find(name);
    if (it == items_.end()) return;  // unknown: a member says so, its parents are unknown
    for (const std::string& parent : it->second.groups) pending.push_back(&parent);
  };
  push_parents(group);
  // Each name enters `found` once, so the walk ends even through cycles.
  while (!pending.empty()) {
    const std::string& name = *pending.back();
    pending.pop_back();
    if (found.insert(name).second) push_parents(name);
  }
  return ancestors_.emplace(group, std::move(found)).first->second;
}

bool GroupMembership::Contains(const openhab::Item& item, std::string_view group) const {
  for (const std::string& direct : item.groups) {
    if (direct == group) return true;
  }
  return std::any_of(item.groups.begin(), item.groups.end(), [&](const std::string& direct) {
    return AncestorsOf(direct).contains(group);
  });
}

ItemPattern::ItemPattern(Kind kind, std::string text, std::string body)
    : kind_(kind), text_(std::move(text)), body_(std::move(body)), body_is_glob_(IsGlob(body_)) {}

Result<ItemPattern> ItemPattern::Compile(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return MakeError("bad_pattern", fmt::format("'{}' {}", text, why));
  };
  if (text.empty()) return MakeError("bad_pattern", fmt::format("an empty pattern: {}", kExpected));
  const std::string_view body = text.substr(1);
  if (text.front() == '@') {
    if (body.empty()) return bad("needs a group name after '@' (@gLights)");
    if (!IsNameOrGlob(body)) {
      return bad(
          "is no group: a group name has only letters, digits and '_' (a glob adds '*' "
          "and '?')");
    }
    return ItemPattern(Kind::kGroup, std::string(text), std::string(body));
  }
  if (text.front() == '#') {
    if (body.empty()) return bad("needs a tag after '#' (#Temperature)");
    if (std::any_of(body.begin(), body.end(),
                    [](char c) { return std::iscntrl(static_cast<unsigned char>(c)); })) {
      return bad("is no tag: a tag has no control characters");
    }
    return ItemPattern(Kind::kTag, std::string(text), std::string(body));
  }
  if (!IsNameOrGlob(text)) return bad(fmt::format("is no item pattern: {}", kExpected));
  return ItemPattern(IsGlob(text) ? Kind::kGlob : Kind::kName, std::string(text),
                     std::string(text));
}

bool ItemPattern::Matches(const openhab::Item& item, const GroupMembership& groups) const {
  switch (kind_) {
    case Kind::kName:
      return item.name == body_;
    case Kind::kGlob:
      return GlobMatch(body_, item.name);
    case Kind::kGroup:
      if (!body_is_glob_) return groups.Contains(item, body_);
      return groups.AnyGroup(item, [&](std::string_view g) { return GlobMatch(body_, g); });
    case Kind::kTag:
      return std::any_of(item.tags.begin(), item.tags.end(),
                         [&](const std::string& tag) { return EqualsIgnoreCase(tag, body_); });
  }
  return false;
}

Result<std::vector<ItemPattern>> CompilePatterns(const std::vector<std::string>& patterns,
                                                 std::string_view what) {
  std::vector<ItemPattern> compiled;
  compiled.reserve(patterns.size());
  std::string problems;
  for (const std::string& text : patterns) {
    auto pattern = ItemPattern::Compile(text);
    if (!pattern) {
      problems +=
          fmt::format("{}{}: {}", problems.empty() ? "" : "\n", what, pattern.error().message);
      continue;
    }
    compiled.push_back(std::move(pattern).value());
  }
  if (!problems.empty()) return MakeError("bad_pattern", problems);
  return compiled;
}

ItemSelector::ItemSelector(std::vector<ItemPattern> items, std::vector<ItemPattern> exclude)
    : items_(std::move(items)), exclude_(std::move(exclude)) {
  match_all_ = std::any_of(items_.begin(), items_.end(),
                           [](const ItemPattern& p) { return p.text() == "*"; });
  const auto group = [](const ItemPattern& p) { return p.kind() == ItemPattern::Kind::kGroup; };
  uses_groups_ = std::any_of(exclude_.begin(), exclude_.end(), group) ||
                 (!match_all_ && std::any_of(items_.begin(), items_.end(), group));
}

Result<ItemSelector> ItemSelector::Create(const std::vector<std::string>& items,
                                          const std::vector<std::string>& exclude) {
  auto included = CompilePatterns(items, "openhab.items");
  auto excluded = CompilePatterns(exclude, "openhab.exclude");
  if (!included || !excluded) {
    std::string message;
    for (const auto* r : {&included, &excluded}) {
      if (!r->ok()) message += (message.empty() ? "" : "\n") + r->error().message;
    }
    return MakeError("bad_pattern", message);
  }
  return ItemSelector(std::move(included).value(), std::move(excluded).value());
}

bool ItemSelector::Selects(const openhab::Item& item, const GroupMembership& groups) const {
  if (IsPlainGroup(item)) return false;
  const auto matches = [&](const ItemPattern& p) { return p.Matches(item, groups); };
  if (!match_all_ && std::none_of(items_.begin(), items_.end(), matches)) return false;
  return std::none_of(exclude_.begin(), exclude_.end(), matches);
}

bool ItemSelector::Selects(const openhab::Item& item, const ItemMap& all) const {
  const GroupMembership groups(all);
  return Selects(item, groups);
}

std::set<std::string> ItemSelector::SelectAll(const ItemMap& all) const {
  const GroupMembership groups(all);
  return SelectAll(all, groups);
}

std::set<std::string> ItemSelector::SelectAll(const ItemMap& all,
                                              const GroupMembership& groups) const {
  std::set<std::string> selected;
  for (const auto& [name, item] : all) {
    if (Selects(item, groups)) selected.emplace_hint(selected.end(), name);
  }
  return selected;
}

}  // namespace iothub::connector
