// The daemons' outbox over the store (notify::Outbox): jobs queued leave from its thread, at
// once when woken, or found by its poll when another process queued them; a job that fails
// is tried again after each delay, then given up; an earlier version's files are moved into
// the store; nothing is lost at stop.
#include "core/notify/outbox.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
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
using namespace pli;
using pli::notify::Outbox;

namespace {

template <typename Pred> bool eventually(Pred p)
{
  for (int i = 0; i < 1000; ++i) {
    if (p()) {
      return true;
    }
    std::this_thread::sleep_for(10ms);
  }
  return p();
}

std::unique_ptr<store::Store> lmdb(const test::TempDir& dir)
{
  auto s = store::open_lmdb({(dir.path / "store").string(), 64, false});
  REQUIRE(s.ok());
  return std::move(s.value());
}

Outbox::Options fast(Outbox::Delays delays = {1ms, 1ms})
{
  Outbox::Options o;
  o.retry_delays = std::move(delays);
  o.lease = 60s;
  o.poll = 1h; // only wake() or the start finds jobs, unless a test says otherwise
  return o;
}

struct Seen
{
  std::mutex mu;
  std::vector<std::string> payloads;
  void add(const std::string& p)
  {
    std::lock_guard lock(mu);
    payloads.push_back(p);
  }
  std::vector<std::string> get()
  {
    std::lock_guard lock(mu);
    return payloads;
  }
};

} // namespace

TEST_CASE("outbox: queued jobs leave from its thread, in order, and are removed once done",
          "[outbox]")
{
  test::TempDir dir;
  auto st = lmdb(dir);
  Seen seen;
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> away{true};
  Outbox box(
      *st, "linkd",
      [&](const store::ClaimedJob& j) {
        away = away && std::this_thread::get_id() != caller;
        CHECK(j.job.queue == "linkd");
        CHECK(j.job.kind == "login_link");
        seen.add(j.job.payload);
        return true;
      },
      fast());
  REQUIRE(box.enqueue("login_link", "1"));
  REQUIRE(box.enqueue("login_link", "2"));
  REQUIRE(box.enqueue("login_link", "3"));
  REQUIRE(eventually([&] { return seen.get().size() == 3; }));
  CHECK(seen.get() == std::vector<std::string>{"1", "2", "3"});
  CHECK(away);
  REQUIRE(eventually([&] { return st->list_jobs("")->empty(); }));
}

TEST_CASE("outbox: a failed job is tried again after each delay, then given up", "[outbox]")
{
  test::TempDir dir;
  auto st = lmdb(dir);
  std::atomic<int> runs{0};
  std::atomic<int> other{0};
  {
    Outbox box(
        *st, "milter",
        [&](const store::ClaimedJob& j) {
          if (j.job.payload == "ok") {
            ++other;
            return true;
          }
          ++runs;
          return false;
        },
        fast({1ms, 1ms}));
    REQUIRE(box.enqueue("failure_notification", "fails"));
    // The first attempt and one per delay, then given up (removed from the store).
    REQUIRE(eventually([&] { return runs.load() == 3 && st->list_jobs("")->empty(); }));
    REQUIRE(box.enqueue("failure_notification", "ok"));
    REQUIRE(eventually([&] { return other.load() == 1; }));
  }
  CHECK(runs.load() == 3);

  // With a long delay the job waits in the store, its attempt counted.
  runs = 0;
  {
    Outbox box(
        *st, "milter", [&](const store::ClaimedJob&) { return ++runs, false; }, fast({1h}));
    REQUIRE(box.enqueue("failure_notification", "waits"));
    REQUIRE(eventually([&] { return runs.load() == 1; }));
    REQUIRE(eventually([&] {
      auto jobs = st->list_jobs("milter").value();
      return jobs.size() == 1 && jobs[0].attempts == 1 &&
             jobs[0].due_at > util::now_micros() + 1800LL * 1000000LL;
    }));
  }
}

TEST_CASE("outbox: a job committed with its event leaves when woken; another process's job "
          "is found by the poll",
          "[outbox]")
{
  test::TempDir dir;
  auto st = lmdb(dir);
  store::NewMessage nm;
  nm.message.set_id("m1");
  nm.message.set_sent_at(util::now_micros());
  store::pb::Delivery d;
  d.set_id("d1");
  d.set_recipient("bob@remote.example");
  d.set_token_hash(util::sha256_hex("t"));
  nm.message.add_delivery_ids("d1");
  nm.deliveries.push_back(d);
  REQUIRE(st->create_message(nm).ok());
  Seen seen;
  {
    Outbox box(
        *st, "linkd", [&](const store::ClaimedJob& j) { return seen.add(j.job.payload), true; },
        fast());
    std::this_thread::sleep_for(50ms); // its first look found nothing; the poll is an hour
    store::NewEvent e;
    e.delivery = "d1";
    e.kind = model::EventKind::read;
    e.at = util::now_micros();
    e.job = store::Job{"linkd", "read_notification", "with the read"};
    REQUIRE(st->append_events({e}).ok());
    box.wake();
    REQUIRE(eventually([&] { return seen.get().size() == 1; }));
    CHECK(seen.get()[0] == "with the read");
  }
  {
    auto options = fast();
    options.poll = 20ms;
    Outbox box(
        *st, "linkd", [&](const store::ClaimedJob& j) { return seen.add(j.job.payload), true; },
        options);
    std::this_thread::sleep_for(50ms);
    // Queued by another process (no wake here): the poll finds it.
    REQUIRE(st->enqueue({"linkd", "login_link", "from another process"}, util::now_micros()).ok());
    REQUIRE(eventually([&] { return seen.get().size() == 2; }));
    CHECK(seen.get()[1] == "from another process");
    // Another queue's job is not this outbox's.
    REQUIRE(st->enqueue({"milter", "failure_notification", "not mine"}, util::now_micros()).ok());
    std::this_thread::sleep_for(100ms);
    CHECK(seen.get().size() == 2);
    CHECK(st->list_jobs("milter")->size() == 1);
  }
}

TEST_CASE("outbox: an earlier version's files are moved into the store, then removed", "[outbox]")
{
  test::TempDir dir;
  auto st = lmdb(dir);
  const auto legacy = dir.path / "outbox" / "linkd";
  std::filesystem::create_directories(legacy);
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream(legacy / name, std::ios::binary) << bytes;
  };
  write("00000000000000000001-1-1.job", "pli-outbox 1\nread_notification\nread d1\nDELIVERY");
  write("00000000000000000002-1-2.job",
        "pli-outbox 1\nreply_notice\nreply r1\n{\"reply\":\"r1\",\"data\":\"LINK\"}");
  write("00000000000000000003-1-3.job", "not an outbox record");
  write("00000000000000000004-1-4.job.tmp", "cut short");
  Seen seen;
  {
    auto options = fast();
    options.legacy_dir = legacy;
    options.upgrade = [](const std::string& kind,
                         const std::string& payload) -> std::optional<std::string> {
      if (kind == "reply_notice") {
        return std::string("upgraded"); // the mail (its link) is not kept
      }
      return payload;
    };
    Outbox box(
        *st, "linkd",
        [&](const store::ClaimedJob& j) {
          return seen.add(j.job.kind + ":" + j.job.payload), true;
        },
        options);
    REQUIRE(eventually([&] { return seen.get().size() == 2; }));
    CHECK(seen.get() ==
          std::vector<std::string>{"read_notification:DELIVERY", "reply_notice:upgraded"});
    REQUIRE(eventually([&] { return std::filesystem::is_empty(legacy); }));
  }
  CHECK(st->list_jobs("")->empty());
}

TEST_CASE("outbox: nothing is lost at stop; a new outbox sends what waits", "[outbox]")
{
  test::TempDir dir;
  auto st = lmdb(dir);
  std::atomic<int> runs{0};
  {
    Outbox box(
        *st, "linkd", [&](const store::ClaimedJob&) { return ++runs, false; }, fast({200ms}));
    REQUIRE(box.enqueue("login_link", "x"));
    REQUIRE(eventually([&] { return runs.load() == 1; }));
  } // stopped while the job waits for its retry
  REQUIRE(st->list_jobs("linkd")->size() == 1);
  Seen seen;
  {
    Outbox box(
        *st, "linkd", [&](const store::ClaimedJob& j) { return seen.add(j.job.payload), true; },
        [] {
          auto o = fast();
          o.poll = 20ms;
          return o;
        }());
    REQUIRE(eventually([&] { return seen.get().size() == 1; }));
    CHECK(seen.get()[0] == "x");
    REQUIRE(eventually([&] { return st->list_jobs("")->empty(); }));
  }
  CHECK(runs.load() == 1);
}

TEST_CASE("outbox: a Message-ID made from the job is the same for every sending", "[outbox]")
{
  store::ClaimedJob j;
  j.id = 42;
  j.created_at = 1656685605000000;
  j.job.queue = "linkd";
  const auto a = Outbox::message_id(j, "pli.example");
  j.attempts = 3;
  CHECK(Outbox::message_id(j, "pli.example") == a);
  CHECK(a == "job.linkd.42.1656685605000000@pli.example");
  CHECK(Outbox::default_delays() == Outbox::Delays{30s, 2min, 10min, 30min, 1h});
  CHECK(Outbox::delays_from(2s) == Outbox::Delays{2s, 8s, 40s, 120s, 240s});
}
