// How fast MessagePacker packs (docs/message-format.md): entries packed per second into Free
// (512 B) and paid (4 KB) messages, draining a queue the way the outbox does (pack from the
// front, drop what was taken), and the cost of one Pack over a long pending list. Prints
// figures; not a test.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "connector/message_format.h"
#include "openhab/state.h"

namespace {

using iothub::connector::Entry;
using iothub::connector::EntryKind;
using iothub::connector::MessageHeader;
using iothub::connector::MessagePacker;
using iothub::connector::PackOptions;

std::vector<Entry> MakeEntries(std::size_t count, std::size_t items) {
  struct Kind {
    const char* type;
    const char* text;
  };
  const std::vector<Kind> kinds = {{"Number:Temperature", "21.5 °C"},
                                   {"Number:Power", "1520 W"},
                                   {"Switch", "ON"},
                                   {"Contact", "CLOSED"},
                                   {"Dimmer", "42"},
                                   {"String", "idle"},
                                   {"Color", "120,100,50"},
                                   {"Number:Energy", "12345.678 kWh"}};
  std::mt19937_64 random(1);
  std::vector<Entry> entries;
  entries.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t item = random() % items;
    const Kind& k = kinds[item % kinds.size()];
    Entry e;
    e.id = static_cast<std::int64_t>(i + 1);
    e.kind = EntryKind::kChange;
    e.key = "Item_" + std::to_string(item);
    e.type = k.type;
    auto state = iothub::openhab::ParseState(k.type, k.text);
    auto v = iothub::connector::EncodeValue(k.type, state.ok() ? *state : iothub::openhab::State{});
    e.value = std::move(v.value);
    e.unit = std::move(v.unit);
    e.state = std::move(v.state);
    e.time_ms = 1'796'212'800'000 + static_cast<std::int64_t>(i) * 13;
    entries.push_back(std::move(e));
  }
  return entries;
}

void Drain(const char* name, std::int64_t chunk, const std::vector<Entry>& all) {
  PackOptions options;
  options.target_bytes = chunk;
  options.chunk_bytes = chunk;
  options.static_properties = {{"Table", "OpenhabRaw"}, {"Format", "json"}};
  MessagePacker packer(options);
  // The outbox hands out a window of the oldest entries; 256 is ample for a 4 KB message.
  constexpr std::size_t kWindow = 256;
  std::vector<Entry> pending(all.begin(), all.end());
  std::size_t head = 0;
  std::int64_t messages = 0;
  std::int64_t billed = 0;
  std::int64_t bytes = 0;
  const auto start = std::chrono::steady_clock::now();
  std::vector<Entry> window;
  std::chrono::steady_clock::duration packing{};
  while (head < pending.size()) {
    // Refill the window: the entries not yet taken, oldest first.
    window.clear();
    for (std::size_t i = head; i < pending.size() && window.size() < kWindow; ++i) {
      if (pending[i].id != 0) window.push_back(pending[i]);
    }
    const MessageHeader header{"00000000-0000-4000-8000-000000000000", messages, 1};
    const auto before = std::chrono::steady_clock::now();
    auto result = packer.Pack(window, header);
    packing += std::chrono::steady_clock::now() - before;
    if (!result.message) break;
    ++messages;
    billed += result.message->billed_messages;
    bytes += result.message->metered_bytes;
    std::size_t taken = 0;
    for (std::size_t i = head; i < pending.size() && taken < result.message->entry_ids.size();
         ++i) {
      if (std::find(result.message->entry_ids.begin(), result.message->entry_ids.end(),
                    pending[i].id) != result.message->entry_ids.end()) {
        pending[i].id = 0;
        ++taken;
      }
    }
    while (head < pending.size() && pending[head].id == 0) ++head;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double pack_seconds = std::chrono::duration<double>(packing).count();
  fmt::print(
      "{:<5} {} entries in {} messages ({:.1f} entries/message, {:.0f} B metered on average, "
      "{} billed): Pack {:.0f} entries/s, {:.1f} us/message; with the bench's window copies "
      "{:.0f} entries/s\n",
      name, all.size(), messages, double(all.size()) / double(messages),
      double(bytes) / double(messages), billed, double(all.size()) / pack_seconds,
      pack_seconds * 1e6 / double(messages), double(all.size()) / seconds);
}

void OnePackOverALongList(std::int64_t chunk, const std::vector<Entry>& all) {
  PackOptions options;
  options.target_bytes = chunk;
  options.chunk_bytes = chunk;
  MessagePacker packer(options);
  constexpr int kRounds = 2000;
  std::size_t carried = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < kRounds; ++r) {
    auto result = packer.Pack(all, {"00000000-0000-4000-8000-000000000000", r, 1});
    carried += result.message ? result.message->entry_ids.size() : 0;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("one Pack over {} pending entries, {} B chunk: {:.1f} us ({} entries each)\n",
             all.size(), chunk, seconds * 1e6 / kRounds, carried / kRounds);
}

}  // namespace

int main() {
  const std::vector<Entry> entries = MakeEntries(200'000, 300);
  Drain("free", 512, entries);
  Drain("paid", 4096, entries);
  OnePackOverALongList(512, MakeEntries(10'000, 1000));
  OnePackOverALongList(4096, MakeEntries(10'000, 1000));
  return 0;
}
