// Store::wait_for_sent: a delivery report that comes back before the `sent` of its notice is
// committed waits for that commit, woken by it (not by polling), and for a bounded time only.
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/store_backends.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace pli;

namespace {

store::NewMessage one(const std::string& id)
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_subject("Notification");
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_sent_at(1656685605LL * 1000000LL);
  store::pb::Delivery d;
  d.set_id("d" + id.substr(1));
  d.set_recipient("bob@remote.example");
  d.set_token_hash(util::sha256_hex("token-" + id));
  nm.message.add_delivery_ids(d.id());
  nm.deliveries.push_back(d);
  return nm;
}

store::NewEvent sent(const std::string& delivery)
{
  store::NewEvent e;
  e.delivery = delivery;
  e.kind = model::EventKind::sent;
  e.at = 1656685606LL * 1000000LL;
  return e;
}

} // namespace

TEST_CASE("a report waits for the sent of its delivery, woken by its commit", "[store][wait]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto opened = where.open();
  auto& st = *opened;
  REQUIRE(st.create_message(one("m1")).ok());

  // Not sent within the bound: the delivery as it is, unsent.
  auto unsent = st.wait_for_sent("d1", std::chrono::milliseconds(20));
  REQUIRE(unsent.ok());
  CHECK(unsent->sent_at() == 0);

  // Other commits (another message) do not end the wait; the delivery's `sent` does, whenever
  // it comes within the bound (a minute: the writer below commits as soon as it runs).
  std::thread writer([&] {
    REQUIRE(st.create_message(one("m2")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(st.append_events({sent("d1")}).ok());
  });
  auto woken = st.wait_for_sent("d1", std::chrono::minutes(1));
  writer.join();
  REQUIRE(woken.ok());
  CHECK(woken->sent_at() != 0);

  // Already sent: at once. Unknown: not_found.
  CHECK(st.wait_for_sent("d1", std::chrono::minutes(1))->sent_at() != 0);
  auto unknown = st.wait_for_sent("d404", std::chrono::minutes(1));
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == store::Errc::not_found);
}

TEST_CASE("on PostgreSQL, a report on one host waits for the sent committed by another",
          "[store][wait][pg]")
{
  test::AnyStore where(test::Backend::postgresql);
  auto host_a = where.open(); // the MTA that injected the notice
  auto host_b = where.open(); // the MTA its delivery report came back through
  REQUIRE(host_a->create_message(one("m1")).ok());
  // B's listener is up before A commits (the wait re-reads after it starts listening).
  CHECK(host_b->wait_for_sent("d1", std::chrono::milliseconds(20))->sent_at() == 0);
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(host_a->append_events({sent("d1")}).ok());
  });
  auto woken = host_b->wait_for_sent("d1", std::chrono::minutes(1));
  writer.join();
  REQUIRE(woken.ok());
  CHECK(woken->sent_at() != 0);

  // The server restarted under B's listener: B reconnects by itself, and a sent committed
  // after the restart still wakes it.
  REQUIRE(host_a->create_message(one("m2")).ok());
  test::PgCluster::get().stop();
  test::PgCluster::get().start();
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int i = 0; i < 100; ++i) { // the first calls after a restart may find it starting
      if (host_a->append_events({sent("d2")}).ok()) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto after = host_b->wait_for_sent("d2", std::chrono::minutes(1));
  later.join();
  REQUIRE(after.ok());
  CHECK(after->sent_at() != 0);
}
