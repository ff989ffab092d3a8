// Which openHAB items the connector replicates (docs/configuration.md, "Choosing items"): the
// patterns of `openhab.items`, `openhab.exclude` and `[[item]].match`, compiled once, matched
// against the items of the mirror. A pattern is an exact name (`LR_Temp`), a glob with `*`
// and `?` (`Sensor_*`), the members of a group, recursively through nested groups (`@gLights`,
// `@g*`), or the items carrying a tag (`#Temperature`, compared ignoring ASCII case as
// openHAB's Item.hasTag does).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "openhab/item.h"

namespace iothub::connector {

// The items as the mirror holds them (openhab::ItemMirror::items()), by name.
using ItemMap = std::map<std::string, openhab::Item>;

// Group membership in one state of `items`: an item belongs to the groups its `groups` list
// names and, through them, to every group those belong to. The walk follows each group's own
// `groups` list, stops at a name that is not in `items` (that group still counts, its parents
// are unknown) and visits each group once, so membership cycles end. Each group's ancestors
// are computed once, on first use, and kept: build one per pass over the items, and none
// across a change of `items`. `items` must outlive it. Not thread-safe (the cache is filled
// by const calls).
class GroupMembership {
 public:
  explicit GroupMembership(const ItemMap& items) : items_(items) {}

  // The groups `item` belongs to, directly or through nested groups (not the item itself).
  // Calls `visit` for each once, in no particular order, until it returns true; returns
  // whether one did.
  template <typename Visit>
  bool AnyGroup(const openhab::Item& item, Visit&& visit) const {
    // Direct groups first (the common case), then their ancestors.
    for (const std::string& group : item.groups) {
      if (visit(group)) return true;
    }
    for (const std::string& group : item.groups) {
      for (const std::string& ancestor : AncestorsOf(group)) {
        if (visit(ancestor)) return true;
      }
    }
    return false;
  }

  // Whether `item` is in `group`, directly or through nested groups.
  bool Contains(const openhab::Item& item, std::string_view group) const;

 private:
  // The groups `group` belongs to, transitively (`group` itself only when in a cycle).
  const std::set<std::string, std::less<>>& AncestorsOf(const std::string& group) const;

  const ItemMap& items_;
  mutable std::map<std::string, std::set<std::string, std::less<>>, std::less<>> ancestors_;
};

// One compiled pattern. Thread-safe as any value.
class ItemPattern {
 public:
  enum class Kind {
    kName,   // an exact item name
    kGlob,   // `*` any run of characters (also none), `?` one character
    kGroup,  // `@name`: members of the group, recursively; `name` may be a glob
    kTag,    // `#tag`: items with this tag, ASCII case ignored; no glob
  };

  // Compiles `text`. Errors (code "bad_pattern") quote the pattern and say what was expected:
  // an empty pattern, `@` or `#` alone, or a name with characters other than letters, digits,
  // `_` (and `*`, `?`). Item names are case-sensitive, as in openHAB.
  static Result<ItemPattern> Compile(std::string_view text);

  Kind kind() const { return kind_; }
  const std::string& text() const { return text_; }

  // Whether `item` matches; `groups` answers membership for kGroup.
  bool Matches(const openhab::Item& item, const GroupMembership& groups) const;

 private:
  ItemPattern(Kind kind, std::string text, std::string body);

  Kind kind_;
  std::string text_;  // as written
  std::string body_;  // the name, glob, group (glob) or tag, without `@` / `#`
  bool body_is_glob_;
};

// Compiles each of `patterns`. The error lists every bad one, one per line, after `what`
// ("openhab.items").
Result<std::vector<ItemPattern>> CompilePatterns(const std::vector<std::string>& patterns,
                                                 std::string_view what);

// `*` and `?` glob match, case-sensitive, byte-wise.
bool GlobMatch(std::string_view glob, std::string_view text);

// A plain group (type `Group` without a base type) has no state of its own and is never
// replicated; a typed group (`Group:Switch:OR`) is an item like others.
bool IsPlainGroup(const openhab::Item& item);

// The selection of `openhab.items` minus `openhab.exclude`. Immutable once made: thread-safe
// for concurrent const use, each call with its own GroupMembership.
class ItemSelector {
 public:
  // Errors (code "bad_pattern") list every bad pattern of both lists.
  static Result<ItemSelector> Create(const std::vector<std::string>& items,
                                     const std::vector<std::string>& exclude);

  // Whether `item` is replicated: it matches some `items` pattern and no `exclude` pattern,
  // and is no plain group. `groups` is over the map `item` is in.
  bool Selects(const openhab::Item& item, const GroupMembership& groups) const;
  // The same for one item of `all`, walking only its own groups.
  bool Selects(const openhab::Item& item, const ItemMap& all) const;

  // The names of every selected item of `all`, in name order. One membership cache for the
  // whole pass: each group's ancestors are walked once.
  std::set<std::string> SelectAll(const ItemMap& all) const;
  // The same with the caller's membership cache (over `all`), to share it with other uses
  // in the same pass (PolicyResolver::Resolve).
  std::set<std::string> SelectAll(const ItemMap& all, const GroupMembership& groups) const;

  // Whether some pattern uses group membership: then a change of any item's `groups` may
  // change the selection of others (its members), and the caller recomputes with SelectAll.
  bool uses_groups() const { return uses_groups_; }

 private:
  ItemSelector(std::vector<ItemPattern> items, std::vector<ItemPattern> exclude);

  std::vector<ItemPattern> items_;
  std::vector<ItemPattern> exclude_;
  bool match_all_ = false;  // `*` among items_: skip matching them
  bool uses_groups_ = false;
};

}  // namespace iothub::connector
