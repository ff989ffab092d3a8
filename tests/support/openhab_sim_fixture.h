// openhab-sim as a child process for end-to-end tests: started on a free port with a home
// (the demo home by default), with a plain HTTP client for its control endpoints
// (docs/openhab-sim.md#control). Not thread-safe.
#pragma once

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace iothub::testing {

class SimProcess {
 public:
  static std::string DemoHome() { return std::string(IOTHUB_SOURCE_DIR) + "/data/demo-home.json"; }

  static Result<std::unique_ptr<SimProcess>> Start(std::vector<std::string> extra = {},
                                                   const std::string& home = DemoHome()) {
    std::vector<std::string> args = {std::string(IOTHUB_BIN_DIR) + "/openhab-sim", "--port", "0",
                                     "--home", home};
    args.insert(args.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(std::move(args), std::chrono::seconds(20));
    if (!child) return child.error();
    auto sim = std::unique_ptr<SimProcess>(new SimProcess());
    sim->port_ = child.value()->ready().value("port", 0);
    sim->child_ = std::move(child).value();
    sim->client_ = std::make_unique<httplib::Client>("127.0.0.1", sim->port_);
    sim->client_->set_read_timeout(30, 0);
    return sim;
  }

  int port() const { return port_; }
  const nlohmann::json& ready() const { return child_->ready(); }
  httplib::Client& http() { return *client_; }
  int Stop() { return child_->Stop(); }

  // A control call: POST with a body; returns the status (-1 when the sim did not answer).
  int Post(const std::string& path, const std::string& body = "",
           const std::string& content_type = "text/plain") {
    auto res = client_->Post(path, body, content_type);
    return res ? res->status : -1;
  }
  nlohmann::json GetJson(const std::string& path) {
    auto res = client_->Get(path);
    if (!res) return nullptr;
    return nlohmann::json::parse(res->body, nullptr, false);
  }

 private:
  SimProcess() = default;
  std::unique_ptr<ChildProcess> child_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

}  // namespace iothub::testing
