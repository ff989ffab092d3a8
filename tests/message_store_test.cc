#include "emulator/message_store.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace iothub::emulator {
namespace {

StoredMessage Msg(const std::string& device, const std::string& body) {
  StoredMessage m;
  m.device_id = device;
  m.body = body;
  m.enqueued_ms = 1'700'000'000'123;
  return m;
}

std::vector<std::uint64_t> Seqs(const std::vector<StoredMessage>& messages) {
  std::vector<std::uint64_t> out;
  for (const auto& m : messages) out.push_back(m.seq);
  return out;
}

using Seq = std::vector<std::uint64_t>;

TEST(MessageStoreTest, EmptyStore) {
  MessageStore store(4);
  EXPECT_EQ(store.LastSeq(), 0u);
  EXPECT_TRUE(store.Read("", 0, 10).empty());
}

TEST(MessageStoreTest, AppendAssignsIncreasingSeqFromOne) {
  MessageStore store(4);
  StoredMessage m = Msg("d1", "a");
  m.seq = 99;  // ignored: the store numbers messages
  EXPECT_EQ(store.Append(m), 1u);
  EXPECT_EQ(store.Append(Msg("d1", "b")), 2u);
  EXPECT_EQ(store.LastSeq(), 2u);
  const auto read = store.Read("", 0, 10);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0].seq, 1u);
  EXPECT_EQ(read[0].body, "a");
  EXPECT_EQ(read[1].seq, 2u);
  EXPECT_EQ(read[1].body, "b");
}

TEST(MessageStoreTest, ReadSinceReturnsOnlyNewer) {
  MessageStore store(10);
  for (int i = 0; i < 5; ++i) store.Append(Msg("d1", std::to_string(i)));
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{1, 2, 3, 4, 5}));
  EXPECT_EQ(Seqs(store.Read("", 2, 10)), (Seq{3, 4, 5}));
  EXPECT_EQ(Seqs(store.Read("", 4, 10)), (Seq{5}));
  EXPECT_TRUE(store.Read("", 5, 10).empty());
  EXPECT_TRUE(store.Read("", 500, 10).empty());
}

TEST(MessageStoreTest, LimitCapsTheAnswerOldestFirst) {
  MessageStore store(10);
  for (int i = 0; i < 5; ++i) store.Append(Msg("d1", std::to_string(i)));
  EXPECT_EQ(Seqs(store.Read("", 0, 2)), (Seq{1, 2}));
  EXPECT_EQ(Seqs(store.Read("", 3, 1)), (Seq{4}));
  EXPECT_TRUE(store.Read("", 0, 0).empty());
}

TEST(MessageStoreTest, DeviceFilterAppliesBeforeTheLimit) {
  MessageStore store(10);
  store.Append(Msg("a", "1"));
  store.Append(Msg("b", "2"));
  store.Append(Msg("a", "3"));
  store.Append(Msg("b", "4"));
  store.Append(Msg("a", "5"));
  EXPECT_EQ(Seqs(store.Read("a", 0, 10)), (Seq{1, 3, 5}));
  EXPECT_EQ(Seqs(store.Read("b", 0, 10)), (Seq{2, 4}));
  EXPECT_EQ(Seqs(store.Read("a", 1, 2)), (Seq{3, 5}));
  EXPECT_EQ(Seqs(store.Read("b", 0, 1)), (Seq{2}));
  EXPECT_TRUE(store.Read("c", 0, 10).empty());
  EXPECT_TRUE(store.Read("a", 5, 10).empty());
}

TEST(MessageStoreTest, RingForgetsTheOldestAtCapacity) {
  MessageStore store(3);
  for (int i = 1; i <= 3; ++i) store.Append(Msg("d", std::to_string(i)));
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{1, 2, 3}));  // exactly at capacity
  store.Append(Msg("d", "4"));                             // one over
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{2, 3, 4}));
  store.Append(Msg("d", "5"));
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{3, 4, 5}));
  EXPECT_EQ(store.LastSeq(), 5u);
  const auto read = store.Read("", 0, 10);
  EXPECT_EQ(read.front().body, "3");
  EXPECT_EQ(read.back().body, "5");
}

TEST(MessageStoreTest, ByteBudgetForgetsTheOldestButKeepsTheNewest) {
  MessageStore store(100, 10);  // 100 messages or 10 body bytes
  store.Append(Msg("d", "aaaa"));
  store.Append(Msg("d", "bbbb"));
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{1, 2}));  // 8 bytes: within budget
  store.Append(Msg("d", "cccc"));                       // 12 bytes: the oldest goes
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{2, 3}));
  store.Append(Msg("d", std::string(50, 'x')));  // larger than the budget on its own
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{4}));
  store.Append(Msg("d", "e"));
  EXPECT_EQ(Seqs(store.Read("", 0, 10)), (Seq{5}));
}

TEST(MessageStoreTest, SinceWithinAndBeforeTheForgottenWindow) {
  MessageStore store(3);
  for (int i = 1; i <= 7; ++i) store.Append(Msg("d", std::to_string(i)));  // keeps 5,6,7
  EXPECT_EQ(Seqs(store.Read("", 1, 10)), (Seq{5, 6, 7}));  // forgotten: start at oldest
  EXPECT_EQ(Seqs(store.Read("", 4, 10)), (Seq{5, 6, 7}));
  EXPECT_EQ(Seqs(store.Read("", 5, 10)), (Seq{6, 7}));
  EXPECT_EQ(Seqs(store.Read("", 6, 10)), (Seq{7}));
  EXPECT_TRUE(store.Read("", 7, 10).empty());
}

TEST(MessageStoreTest, WaitNewerReturnsAtOnceWhenAlreadyNewer) {
  MessageStore store(3);
  store.Append(Msg("d", "1"));
  store.Append(Msg("d", "2"));
  EXPECT_EQ(store.WaitNewer(0, 60'000), 2u);
  EXPECT_EQ(store.WaitNewer(1, 60'000), 2u);
}

TEST(MessageStoreTest, WaitNewerTimesOutWithTheCurrentSeq) {
  MessageStore store(3);
  EXPECT_EQ(store.WaitNewer(0, 0), 0u);
  EXPECT_EQ(store.WaitNewer(0, 1), 0u);
  store.Append(Msg("d", "1"));
  EXPECT_EQ(store.WaitNewer(1, 1), 1u);
  EXPECT_EQ(store.WaitNewer(5, 0), 1u);
}

TEST(MessageStoreTest, WaitNewerWakesOnAppendFromAnotherThread) {
  MessageStore store(3);
  std::thread writer([&] { store.Append(Msg("d", "x")); });
  // The generous timeout only bounds a failure; an append ends the wait.
  EXPECT_EQ(store.WaitNewer(0, 30'000), 1u);
  writer.join();
}

TEST(MessageStoreTest, MessageToJsonCarriesEverything) {
  StoredMessage m = Msg("dev1", "hi");
  m.seq = 7;
  m.properties["color"] = "blue";
  m.system_properties["message-id"] = "mid-1";
  const auto j = MessageToJson(m);
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["deviceId"], "dev1");
  EXPECT_EQ(j["enqueuedTime"], "2023-11-14T22:13:20.1230000Z");
  EXPECT_EQ(j["body"], "hi");
  EXPECT_EQ(j["bodyBase64"], "aGk=");
  EXPECT_EQ(j["properties"], (nlohmann::json{{"color", "blue"}}));
  EXPECT_EQ(j["systemProperties"], (nlohmann::json{{"message-id", "mid-1"}}));
}

}  // namespace
}  // namespace iothub::emulator
