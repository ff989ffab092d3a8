// The reference decoder of openHAB events: DecodeEvent (event.h) without its fast path, every
// document parsed in full by nlohmann. DecodeEvent falls back to it for whatever its scanner
// (json_scan.h) is unsure of, and must always agree with it; the differential test holds the
// two to that. Internal to the openHAB client. Thread-safe (pure).
#pragma once

#include "common/result.h"
#include "openhab/event.h"
#include "openhab/sse_parser.h"

namespace iothub::openhab {

Result<Event> DecodeEventReference(const SseEvent& sse);

}  // namespace iothub::openhab
