#include "core/singleflight.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "testing.h"

namespace packice {
namespace {

using namespace std::chrono_literals;

// A gate the loaders wait on until the test opens it.
class Gate {
 public:
  void Open() { open_.set_value(); }
  void Wait() { opened_.wait(); }

 private:
  std::promise<void> open_;
  std::shared_future<void> opened_ = open_.get_future().share();
};

TEST(SingleFlightTest, ConcurrentCallersShareOneLoad) {
  SingleFlight<std::string> flight;
  std::atomic<int> calls{0};
  Gate gate;
  constexpr int kCallers = 200;
  std::latch started(kCallers);
  std::atomic<int> shared_count{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&] {
      started.count_down();
      bool shared = false;
      Result<std::string> r = flight.Do(
          "k",
          [&]() -> Result<std::string> {
            ++calls;
            gate.Wait();
            return std::string("v");
          },
          10s, &shared);
      ASSERT_OK(r.status());
      EXPECT_EQ(*r, "v");
      shared_count += shared;
    });
  }
  started.wait();
  // The load cannot end before every caller has joined it.
  while (flight.Waiters("k") < kCallers) std::this_thread::sleep_for(1ms);
  gate.Open();
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(shared_count.load(), kCallers - 1);
}

TEST(SingleFlightTest, ErrorReachesEveryWaiterAndIsNotRemembered) {
  SingleFlight<std::string> flight;
  std::atomic<int> calls{0};
  Gate gate;
  auto failing = [&]() -> Result<std::string> {
    ++calls;
    gate.Wait();
    return NotFound("no such row");
  };
  std::vector<std::future<Result<std::string>>> waiters;
  for (int i = 0; i < 10; ++i) {
    waiters.push_back(std::async(std::launch::async, [&] { return flight.Do("k", failing, 10s); }));
  }
  std::this_thread::sleep_for(50ms);
  gate.Open();
  for (auto& w : waiters) EXPECT_CODE(w.get(), kNotFound);
  EXPECT_EQ(calls.load(), 1);
  // Not remembered: the next call loads again.
  Result<std::string> again = flight.Do(
      "k", [] { return Result<std::string>(std::string("ok")); }, 10s);
  ASSERT_OK(again.status());
  EXPECT_EQ(*again, "ok");
}

TEST(SingleFlightTest, TimeoutFailsWaitersAndKeepsOneLoadPerKey) {
  SingleFlight<std::string> flight;
  std::atomic<int> calls{0};
  Gate gate;
  auto slow = [&]() -> Result<std::string> {
    ++calls;
    gate.Wait();
    return std::string("late");
  };
  EXPECT_CODE(flight.Do("k", slow, 20ms), kTimeout);
  // The load still runs; a second caller joins it instead of starting another.
  EXPECT_EQ(flight.running(), 1u);
  EXPECT_CODE(flight.Do("k", slow, 20ms), kTimeout);
  EXPECT_EQ(calls.load(), 1);
  gate.Open();
  flight.WaitIdle();
  EXPECT_EQ(flight.running(), 0u);
}

TEST(SingleFlightTest, AbandonedLoadsAreBounded) {
  SingleFlight<std::string> flight({.max_running = 2});
  Gate gate;
  auto hang = [&]() -> Result<std::string> {
    gate.Wait();
    return std::string("v");
  };
  EXPECT_CODE(flight.Do("a", hang, 10ms), kTimeout);
  EXPECT_CODE(flight.Do("b", hang, 10ms), kTimeout);
  EXPECT_CODE(flight.Do("c", hang, 10ms), kUnavailable);  // no third thread
  EXPECT_EQ(flight.running(), 2u);
  gate.Open();
  flight.WaitIdle();
  ASSERT_OK(flight.Do("c", hang, 10s).status());
}

TEST(SingleFlightTest, NestedLoadOfAnotherKeyDoesNotDeadlock) {
  SingleFlight<std::string> flight;
  Result<std::string> r = flight.Do(
      "outer",
      [&]() -> Result<std::string> {
        PACKICE_ASSIGN_OR_RETURN(
            std::string inner,
            flight.Do(
                "inner", [] { return Result<std::string>(std::string("i")); }, 5s));
        return "o+" + inner;
      },
      5s);
  ASSERT_OK(r.status());
  EXPECT_EQ(*r, "o+i");
}

TEST(SingleFlightTest, LoadThatWaitsForItselfFails) {
  SingleFlight<std::string> flight;
  std::function<Result<std::string>()> a, b;
  a = [&]() -> Result<std::string> { return flight.Do("b", b, 5s); };
  b = [&]() -> Result<std::string> { return flight.Do("a", a, 5s); };  // a -> b -> a
  EXPECT_CODE(flight.Do("a", a, 5s), kInvalidArgument);
}

TEST(SingleFlightTest, ThrowingLoadIsAnInternalError) {
  SingleFlight<int> flight;
  EXPECT_CODE(flight.Do(
                  "k", []() -> Result<int> { throw std::runtime_error("boom"); }, 5s),
              kInternal);
}

TEST(SingleFlightTest, DestructorWaitsForAbandonedLoads) {
  std::atomic<bool> finished{false};
  {
    SingleFlight<int> flight;
    EXPECT_CODE(flight.Do(
                    "k",
                    [&]() -> Result<int> {
                      std::this_thread::sleep_for(100ms);
                      finished = true;
                      return 1;
                    },
                    1ms),
                kTimeout);
  }
  EXPECT_TRUE(finished.load());
}

}  // namespace
}  // namespace packice
