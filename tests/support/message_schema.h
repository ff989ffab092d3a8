// Validates telemetry bodies against docs/message-format.schema.json through
// scripts/validate-messages.py (Debian's python3-jsonschema, run with /usr/bin/python3), for
// every test that sees messages: EXPECT_TRUE(ValidateMessages(bodies)). Needs IOTHUB_SOURCE_DIR
// (tests/CMakeLists.txt defines it). Not thread-safe (a temp file and popen).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/run_command.h"

namespace iothub::testing {

// Success when every body is valid; otherwise the validator's account of the first invalid
// one (or why it could not run).
inline ::testing::AssertionResult ValidateMessages(const std::vector<std::string>& bodies) {
  std::string path = "/tmp/iothub-messages-XXXXXX.jsonl";
  const int fd = ::mkstemps(path.data(), 6);
  if (fd < 0) return ::testing::AssertionFailure() << "cannot create a temp file";
  FILE* file = ::fdopen(fd, "w");
  if (file == nullptr) {
    ::close(fd);
    ::unlink(path.c_str());
    return ::testing::AssertionFailure() << "cannot open the temp file";
  }
  for (std::string body : bodies) {
    // One body a line: a raw newline is whitespace between JSON tokens (or makes the body
    // invalid JSON, either way).
    for (char& c : body) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    std::fwrite(body.data(), 1, body.size(), file);
    std::fputc('\n', file);
  }
  std::fclose(file);
  const std::string source = IOTHUB_SOURCE_DIR;
  const CommandOutput run =
      RunCommand("/usr/bin/python3 '" + source + "/scripts/validate-messages.py' '" + source +
                 "/docs/message-format.schema.json' '" + path + "' 2>&1");
  ::unlink(path.c_str());
  if (run.status == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "message schema validation failed (exit " << run.status << "):\n"
         << run.out;
}

inline ::testing::AssertionResult ValidateMessage(const std::string& body) {
  return ValidateMessages({body});
}

}  // namespace iothub::testing
