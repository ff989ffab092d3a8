// Hex and UUID helpers of common/crypto.h.
#include "common/crypto.h"

#include <gtest/gtest.h>

#include <regex>

namespace iothub {
namespace {

TEST(CryptoTest, HexEncodeIsLowercaseTwoDigitsPerByte) {
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xa0\xff", 4)), "000fa0ff");
  EXPECT_EQ(HexEncode(""), "");
}

TEST(CryptoTest, NewUuidIsARandomVersion4Uuid) {
  const std::regex shape("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  const std::string a = NewUuid();
  EXPECT_TRUE(std::regex_match(a, shape)) << a;
  EXPECT_NE(a, NewUuid());
}

}  // namespace
}  // namespace iothub
