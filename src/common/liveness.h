// Whether an object still exists, for callbacks that may outlive it: a completion posted to
// the loop by a worker thread, an HTTP answer arriving after its requester was destroyed. The
// owner holds a Liveness member, declared so that it is destroyed before anything the
// callbacks touch (last member: first destroyed); a callback captures a Watch (or is wrapped by
// Guard) and does nothing once the owner is gone.
//
// Thread-safety: a Watch may be copied and checked on any thread (it is a weak reference), but
// the answer only stays true while the owner cannot be destroyed concurrently: check it, and
// use the owner, on the owner's thread (the loop). A worker thread may check it only to skip
// work that a later check on the loop would drop anyway.
#pragma once

#include <memory>
#include <utility>

namespace iothub {

class Liveness {
 public:
  class Watch {
   public:
    bool alive() const { return !token_.expired(); }

   private:
    friend class Liveness;
    explicit Watch(std::weak_ptr<const int> token) : token_(std::move(token)) {}
    std::weak_ptr<const int> token_;
  };

  Liveness() = default;
  // A copy or move would share or steal the token; owners are not copied anyway.
  Liveness(const Liveness&) = delete;
  Liveness& operator=(const Liveness&) = delete;

  Watch watch() const { return Watch(token_); }

  // `fn` wrapped so that, called after the owner is gone, it does nothing.
  template <typename Fn>
  auto Guard(Fn fn) const {
    return [watch = watch(), fn = std::move(fn)](auto&&... args) mutable {
      if (watch.alive()) fn(std::forward<decltype(args)>(args)...);
    };
  }

 private:
  std::shared_ptr<const int> token_ = std::make_shared<const int>(0);
};

}  // namespace iothub
