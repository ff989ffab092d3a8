// openHAB things and item-channel links as the REST API describes them
// (shared/reference/openhab.md §2): `GET /rest/things` entries (openhab-core's
// EnrichedThingDTO with ThingStatusInfo and EnrichedChannelDTO) and `GET /rest/links` entries
// (EnrichedItemChannelLinkDTO). Both endpoints need the ADMIN role. Parsing follows item.h:
// tolerant of what real installations send (null or missing optional fields, unknown members,
// things without channels) and strict about identities (UIDs, item names) and member types.
// Thread-safe (pure functions).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "openhab/item.h"

namespace iothub::openhab {

struct Channel {
  std::string uid;               // "mqtt:topic:broker:sensor1:temp"
  std::string id;                // "temp"; "group#channel" for channels in a group
  std::string channel_type_uid;  // "mqtt:number"; "" when absent
  std::string item_type;         // "Number:Temperature"; "" for trigger channels
  std::string kind;              // "STATE" or "TRIGGER"
  std::string label;
  std::vector<std::string> linked_items;  // item names
};

struct Thing {
  std::string uid;             // "mqtt:topic:broker:sensor1"
  std::string thing_type_uid;  // "mqtt:topic"
  std::string label;
  std::string bridge_uid;  // "" when the thing has no bridge (bridges themselves included)
  std::string location;
  Json configuration = Json::object();
  std::map<std::string, std::string> properties;
  // statusInfo. `status` is kept as sent: a value outside §2's list (a newer openHAB) keeps
  // the thing, with status_known false, rather than hiding it. A thing without statusInfo has
  // an empty status, also not known.
  std::string status;         // "ONLINE", "OFFLINE", ...
  bool status_known = false;  // status is one of IsThingStatus's values
  std::string status_detail;  // "NONE", "COMMUNICATION_ERROR", ...
  std::string status_description;
  bool editable = false;
  std::vector<Channel> channels;

  bool online() const { return status == "ONLINE"; }
};

// The statuses openHAB defines (ThingStatus): UNINITIALIZED, INITIALIZING, UNKNOWN, ONLINE,
// OFFLINE, REMOVING, REMOVED.
bool IsThingStatus(std::string_view status);

// A thing UID: at least three ':'-separated segments of [A-Za-z0-9_-] ("binding:type:id",
// with bridge ids between type and id).
bool IsThingUid(std::string_view uid);
// A channel UID: a thing UID and a channel id, which may be "group#channel".
bool IsChannelUid(std::string_view uid);

// One thing object. Errors (code "bad_thing") say what was wrong and with which thing; a
// malformed channel makes its thing unusable.
Result<Thing> ParseThing(const Json& object);

struct ThingList {
  std::vector<Thing> things;
  std::vector<Error> skipped;  // entries that could not be understood, with reasons
};
// A `GET /rest/things` body. Fails only when the body is not a JSON array (or nests beyond
// kMaxJsonDepth).
Result<ThingList> ParseThings(std::string_view body);

struct Link {
  std::string channel_uid;
  std::string item_name;
  Json configuration = Json::object();  // e.g. {"profile":"system:follow"}
  bool editable = false;
};

// One link object. Errors have code "bad_link".
Result<Link> ParseLink(const Json& object);

struct LinkList {
  std::vector<Link> links;
  std::vector<Error> skipped;  // entries that could not be understood, with reasons
};
// A `GET /rest/links` body. Fails only when the body is not a JSON array.
Result<LinkList> ParseLinks(std::string_view body);

}  // namespace iothub::openhab
