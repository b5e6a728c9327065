// Store::wait_for_sent: a delivery report that comes back before the `sent` of its notice is
// committed waits for that commit, woken by it (not by polling), and for a bounded time only.
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/temp_dir.hpp"

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
  test::TempDir dir;
  auto opened = store::open_lmdb({dir.path.string(), 64, false});
  REQUIRE(opened.ok());
  auto& st = *opened.value();
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
