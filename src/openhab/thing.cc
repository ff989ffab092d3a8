#include "openhab/thing.h"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "common/json_depth.h"
#include "openhab/event.h"
#include "openhab/json_fields.h"

namespace iothub::openhab {
namespace {

using json::ReadBool;
using json::ReadObject;
using json::ReadString;

// openhab-core's AbstractUID segments: Java's \w (ASCII) and '-'.
bool IsSegment(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-';
    if (!word) return false;
  }
  return true;
}

// Splits on ':' and checks every segment; `last` checks the final one.
template <typename LastCheck>
bool IsUid(std::string_view uid, std::size_t min_segments, LastCheck last) {
  std::size_t segments = 0;
  while (true) {
    const std::size_t colon = uid.find(':');
    const std::string_view segment = uid.substr(0, colon);
    ++segments;
    if (colon == std::string_view::npos) return segments >= min_segments && last(segment);
    if (!IsSegment(segment)) return false;
    uid.remove_prefix(colon + 1);
  }
}

Result<Channel> ParseChannel(const Json& object) {
  if (!object.is_object()) return MakeError("bad_channel", "a channel is not a JSON object");
  Channel channel;
  if (!ReadString(object, "uid", channel.uid) || !IsChannelUid(channel.uid)) {
    return MakeError("bad_channel", "a channel has no valid uid");
  }
  const auto bad = [&](std::string_view what) {
    return MakeError("bad_channel", fmt::format("channel '{}': {}", channel.uid, what));
  };
  if (!ReadString(object, "id", channel.id) ||
      !ReadString(object, "channelTypeUID", channel.channel_type_uid) ||
      !ReadString(object, "itemType", channel.item_type) ||
      !ReadString(object, "kind", channel.kind) || !ReadString(object, "label", channel.label)) {
    return bad("a text field has another type");
  }
  if (const auto it = object.find("linkedItems"); it != object.end() && !it->is_null()) {
    if (!it->is_array()) return bad("linkedItems is not a list");
    for (const auto& name : *it) {
      if (!name.is_string() || !IsItemName(name.get_ref<const std::string&>())) {
        return bad("linkedItems holds something other than an item name");
      }
      channel.linked_items.push_back(name.get<std::string>());
    }
  }
  return channel;
}

}  // namespace

bool IsThingStatus(std::string_view status) {
  static constexpr std::array<std::string_view, 7> kStatuses = {
      "UNINITIALIZED", "INITIALIZING", "UNKNOWN", "ONLINE", "OFFLINE", "REMOVING", "REMOVED"};
  for (const auto known : kStatuses) {
    if (status == known) return true;
  }
  return false;
}

bool IsThingUid(std::string_view uid) { return IsUid(uid, 3, IsSegment); }

bool IsChannelUid(std::string_view uid) {
  // The channel id of a channel in a group is "group#channel".
  return IsUid(uid, 4, [](std::string_view id) {
    const std::size_t hash = id.find('#');
    if (hash == std::string_view::npos) return IsSegment(id);
    return IsSegment(id.substr(0, hash)) && IsSegment(id.substr(hash + 1));
  });
}

Result<Thing> ParseThing(const Json& object) {
  if (!object.is_object()) return MakeError("bad_thing", "a thing entry is not a JSON object");
  Thing thing;
  if (!ReadString(object, "UID", thing.uid) || !IsThingUid(thing.uid)) {
    return MakeError("bad_thing", "a thing has no valid UID");
  }
  const auto bad = [&](std::string_view what) {
    return MakeError("bad_thing", fmt::format("thing '{}': {}", thing.uid, what));
  };
  if (!ReadString(object, "thingTypeUID", thing.thing_type_uid) ||
      !ReadString(object, "label", thing.label) ||
      !ReadString(object, "bridgeUID", thing.bridge_uid) ||
      !ReadString(object, "location", thing.location)) {
    return bad("a text field has another type");
  }
  if (!IsUid(thing.thing_type_uid, 2, IsSegment)) return bad("no valid thingTypeUID");
  if (!thing.bridge_uid.empty() && !IsThingUid(thing.bridge_uid)) return bad("bad bridgeUID");
  if (!ReadObject(object, "configuration", thing.configuration)) {
    return bad("configuration is not an object");
  }
  Json properties = Json::object();
  if (!ReadObject(object, "properties", properties)) return bad("properties is not an object");
  for (const auto& [key, value] : properties.items()) {
    if (!value.is_string()) return bad(fmt::format("property '{}' is not text", key));
    thing.properties.emplace(key, value.get<std::string>());
  }
  Json status = Json::object();
  if (!ReadObject(object, "statusInfo", status)) return bad("statusInfo is not an object");
  if (!ReadString(status, "status", thing.status) ||
      !ReadString(status, "statusDetail", thing.status_detail) ||
      !ReadString(status, "description", thing.status_description)) {
    return bad("statusInfo has a field of another type");
  }
  thing.status_known = IsThingStatus(thing.status);
  if (!ReadBool(object, "editable", thing.editable)) return bad("editable is not a boolean");
  if (const auto it = object.find("channels"); it != object.end() && !it->is_null()) {
    if (!it->is_array()) return bad("channels is not a list");
    thing.channels.reserve(it->size());
    for (const auto& entry : *it) {
      auto channel = ParseChannel(entry);
      if (!channel) return bad(channel.error().message);
      thing.channels.push_back(std::move(channel).value());
    }
  }
  return thing;
}

Result<ThingList> ParseThings(std::string_view body) {
  auto parsed = detail::ParseEach<Thing>(body, "thing list", ParseThing);
  if (!parsed) return parsed.error();
  return ThingList{std::move(parsed->first), std::move(parsed->second)};
}

Result<Link> ParseLink(const Json& object) {
  if (!object.is_object()) return MakeError("bad_link", "a link entry is not a JSON object");
  Link link;
  if (!ReadString(object, "itemName", link.item_name) || !IsItemName(link.item_name)) {
    return MakeError("bad_link", "a link has no valid itemName");
  }
  const auto bad = [&](std::string_view what) {
    return MakeError("bad_link", fmt::format("link of item '{}': {}", link.item_name, what));
  };
  if (!ReadString(object, "channelUID", link.channel_uid) || !IsChannelUid(link.channel_uid)) {
    return bad("no valid channelUID");
  }
  if (!ReadObject(object, "configuration", link.configuration)) {
    return bad("configuration is not an object");
  }
  if (!ReadBool(object, "editable", link.editable)) return bad("editable is not a boolean");
  return link;
}

Result<LinkList> ParseLinks(std::string_view body) {
  auto parsed = detail::ParseEach<Link>(body, "link list", ParseLink);
  if (!parsed) return parsed.error();
  return LinkList{std::move(parsed->first), std::move(parsed->second)};
}

}  // namespace iothub::openhab
