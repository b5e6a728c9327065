// linkd's outbox: jobs leave from a background thread, in order; a job that fails is tried
// again after each delay, then given up; stopping runs the jobs already due.
#include "core/notify/outbox.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using pli::notify::Outbox;

namespace {

template <typename Pred> bool eventually(Pred p)
{
  for (int i = 0; i < 500; ++i) {
    if (p()) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return p();
}

} // namespace

TEST_CASE("outbox: jobs run in order, away from the caller", "[outbox]")
{
  std::mutex mu;
  std::vector<int> order;
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> other_thread{true};
  Outbox box({10ms});
  for (int i = 0; i < 5; ++i) {
    CHECK(box.push("job", [&, i] {
      std::lock_guard lock(mu);
      order.push_back(i);
      other_thread = other_thread && std::this_thread::get_id() != caller;
      return true;
    }));
  }
  REQUIRE(eventually([&] { return box.pending() == 0; }));
  std::lock_guard lock(mu);
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(other_thread);
}

TEST_CASE("outbox: a failed job is tried again after each delay, then given up", "[outbox]")
{
  std::atomic<int> flaky{0}, broken{0};
  {
    Outbox box({20ms, 40ms, 80ms});
    const auto start = std::chrono::steady_clock::now();
    std::atomic<long long> third_at{0};
    box.push("flaky", [&] {
      if (++flaky < 3) {
        return false;
      }
      third_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
      return true;
    });
    box.push("broken", [&] {
      ++broken;
      return false;
    });
    REQUIRE(eventually([&] { return box.pending() == 0; }));
    CHECK(flaky == 3);
    CHECK(third_at >= 60); // after the first two delays
    CHECK(broken == 4);    // the first try and one after each of the three delays
  }
}

TEST_CASE("outbox: stopping runs the jobs due, drops those waiting for a retry", "[outbox]")
{
  std::atomic<int> ran{0}, retried{0};
  {
    Outbox box({1h});
    box.push("waits", [&] { return ++retried > 1; }); // fails once: waits an hour
    for (int i = 0; i < 20; ++i) {
      box.push("due", [&] {
        std::this_thread::sleep_for(1ms);
        ++ran;
        return true;
      });
    }
  }
  CHECK(ran == 20);
  CHECK(retried == 1);
}

TEST_CASE("outbox: a full queue refuses a job", "[outbox]")
{
  std::atomic<bool> release{false};
  Outbox box({1h}, 2);
  CHECK(box.push("blocks", [&] {
    while (!release) {
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }));
  REQUIRE(eventually([&] { return box.pending() == 0; })); // taken by the thread
  CHECK(box.push("one", [] { return true; }));
  CHECK(box.push("two", [] { return true; }));
  CHECK_FALSE(box.push("three", [] { return true; }));
  release = true;
}

TEST_CASE("outbox: a durable job waiting for a retry outlives a restart", "[outbox]")
{
  pli::test::TempDir dir;
  const auto box_dir = dir.path / "outbox";
  auto files = [&] {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(box_dir)) {
      out.push_back(e.path().filename().string());
    }
    return out;
  };
  std::atomic<bool> listener_up{false};
  std::atomic<int> sent{0};
  std::mutex mu;
  std::vector<std::string> revived;
  auto revive = [&](const Outbox::Record& r) -> Outbox::Job {
    if (r.kind != "notice") {
      return {};
    }
    std::lock_guard lock(mu);
    revived.push_back(r.payload);
    return [&] {
      if (!listener_up) {
        return false;
      }
      ++sent;
      return true;
    };
  };
  {
    Outbox box({1h}, 100, Outbox::Persistence{box_dir, revive});
    CHECK(box.push(
        "waits", [&] { return listener_up.load(); },
        Outbox::Record{"notice", std::string("payload\n\0bytes", 14)}));
    CHECK(box.push(
        "done at once", [] { return true; }, Outbox::Record{"notice", "two"}));
    CHECK(box.push("in memory", [] { return false; })); // no record: dropped at stop
    REQUIRE(eventually([&] { return files().size() == 1; }));
  }
  // Stopped with the first job waiting: its record stays; the one done is gone.
  REQUIRE(files().size() == 1);
  CHECK(files().front().find(".job") != std::string::npos);
  // Left-overs a new run must clean: a record cut short, an unknown kind, garbage.
  std::ofstream(box_dir / "00000000000000000001-1-1.tmp") << "pli-outbox 1\nnot";
  std::ofstream(box_dir / "00000000000000000002-1-1.job") << "pli-outbox 1\nunknown\nx\ny";
  std::ofstream(box_dir / "00000000000000000003-1-1.job") << "garbage";
  listener_up = true;
  {
    Outbox box({1h}, 100, Outbox::Persistence{box_dir, revive});
    REQUIRE(eventually([&] { return sent == 1 && files().empty(); }));
  }
  std::lock_guard lock(mu);
  REQUIRE(revived.size() == 1);
  CHECK(revived.front() == std::string("payload\n\0bytes", 14));
}
