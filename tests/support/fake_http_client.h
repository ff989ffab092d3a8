// A fake HttpClient for unit tests: records every request, and the test answers each one
// explicitly (Reply) or scripts answers ahead (Script). Answers are delivered through
// loop.Post, like the real client's, so nothing completes inside Send(). Not thread-safe.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "common/event_loop.h"
#include "common/http_client.h"

namespace iothub::testing {

class FakeHttpClient final : public HttpClient {
 public:
  explicit FakeHttpClient(EventLoop& loop) : loop_(loop) {}

  void Send(HttpRequest request, Done done) override {
    requests_.push_back(std::move(request));
    pending_.push_back(std::move(done));
    if (!script_.empty()) {
      Result<HttpResponse> next = std::move(script_.front());
      script_.pop_front();
      Reply(requests_.size() - 1, std::move(next));
    }
  }

  // Answers request `index` (0-based, in sending order). Each request is answered once.
  void Reply(std::size_t index, Result<HttpResponse> result) {
    if (index >= pending_.size() || !pending_[index]) {
      std::fprintf(stderr, "FakeHttpClient: request %zu was not sent or is already answered\n",
                   index);
      std::abort();
    }
    loop_.Post([done = std::move(pending_[index]), result = std::move(result)] { done(result); });
    pending_[index] = nullptr;
  }
  void Reply(std::size_t index, int status, std::string body = {}, HttpHeaders headers = {}) {
    Reply(index, Response(status, std::move(body), std::move(headers)));
  }
  // Answers the oldest request not answered yet.
  void ReplyNext(int status, std::string body = {}, HttpHeaders headers = {}) {
    Reply(FirstUnanswered(), status, std::move(body), std::move(headers));
  }
  void ReplyNext(Result<HttpResponse> result) { Reply(FirstUnanswered(), std::move(result)); }
  // Queues an answer for the next request sent from now on (in order).
  void Script(Result<HttpResponse> result) { script_.push_back(std::move(result)); }
  void Script(int status, std::string body = {}, HttpHeaders headers = {}) {
    Script(Response(status, std::move(body), std::move(headers)));
  }

  const std::vector<HttpRequest>& requests() const { return requests_; }
  const HttpRequest& last() const { return requests_.back(); }
  std::size_t unanswered() const {
    std::size_t n = 0;
    for (const auto& done : pending_) n += done ? 1 : 0;
    return n;
  }

  static HttpResponse Response(int status, std::string body = {}, HttpHeaders headers = {}) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    return r;
  }

 private:
  std::size_t FirstUnanswered() const {
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      if (pending_[i]) return i;
    }
    std::fprintf(stderr, "FakeHttpClient: no request waits for an answer\n");
    std::abort();
  }

  EventLoop& loop_;
  std::vector<HttpRequest> requests_;
  std::vector<Done> pending_;  // by request index; empty once answered
  std::deque<Result<HttpResponse>> script_;
};

}  // namespace iothub::testing
