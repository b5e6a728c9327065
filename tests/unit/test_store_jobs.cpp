// The store's outbox (Store::claim_jobs and the jobs on NewEvent), on both stores: a job
// queued with its event, and only when the event is recorded; a claim leases the job (not
// claimed again before the lease ends, claimed again after it); concurrent claimers never
// get the same job; finish removes it, retry delays it; enqueue without an event.
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/store_backends.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

using namespace pli;

namespace {

constexpr std::int64_t k_t0 = 1656685605LL * 1000000LL;
constexpr std::int64_t k_sec = 1000000LL;

store::NewMessage one(const std::string& id)
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_subject("Notification");
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_sent_at(k_t0);
  store::pb::Delivery d;
  d.set_id("d" + id.substr(1));
  d.set_recipient("bob@remote.example");
  d.set_token_hash(util::sha256_hex("token-" + id));
  nm.message.add_delivery_ids(d.id());
  nm.deliveries.push_back(d);
  return nm;
}

store::NewEvent with_job(const std::string& delivery, model::EventKind kind,
                         const std::string& dedupe, const std::string& payload)
{
  store::NewEvent e;
  e.delivery = delivery;
  e.kind = kind;
  e.at = k_t0 + k_sec;
  e.dedupe_key = dedupe;
  e.job = store::Job{"milter", "failure_notification", payload};
  return e;
}

} // namespace

TEST_CASE("a job is queued with its event, never without it", "[store][jobs]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  REQUIRE(st->create_message(one("m1")).ok());
  CHECK(st->list_jobs("")->empty());
  CHECK(st->claim_jobs("milter", k_t0 + 10 * k_sec, 60 * k_sec, 10)->empty());

  // Recorded: its job with it.
  REQUIRE(st->append_events({with_job("d1", model::EventKind::failed, "dsn-1", "before\x01")})
              ->size() == 1);
  auto jobs = st->list_jobs("milter").value();
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0].job.queue == "milter");
  CHECK(jobs[0].job.kind == "failure_notification");
  CHECK(jobs[0].job.payload == "before\x01");
  CHECK(jobs[0].created_at == k_t0 + k_sec);
  CHECK(jobs[0].attempts == 0);
  CHECK(st->list_jobs("linkd")->empty());

  // The same report again: the event is skipped by its dedupe key, and queues nothing.
  CHECK(st->append_events({with_job("d1", model::EventKind::failed, "dsn-1", "again")})->empty());
  CHECK(st->list_jobs("")->size() == 1);

  // A transaction that fails (an unknown delivery in it) queues nothing either.
  auto bad = st->append_events({with_job("d1", model::EventKind::delivered, "", "first"),
                                with_job("d-unknown", model::EventKind::read, "", "second")});
  CHECK_FALSE(bad.ok());
  CHECK(st->list_jobs("")->size() == 1);
  CHECK(st->events_of_message("m1")->size() == 1);

  // A reply's event carries the reply notice the same way.
  store::NewReply reply;
  reply.reply.set_id("r1");
  reply.reply.set_delivery("d1");
  reply.reply.set_at(k_t0 + 2 * k_sec);
  reply.reply.set_text("Bien reçu.");
  store::NewEvent ev;
  ev.delivery = "d1";
  ev.kind = model::EventKind::reply;
  ev.at = k_t0 + 2 * k_sec;
  ev.job = store::Job{"linkd", "reply_notice", R"({"reply":"r1"})"};
  reply.events.push_back(ev);
  REQUIRE(st->create_reply(reply).ok());
  auto linkd = st->list_jobs("linkd").value();
  REQUIRE(linkd.size() == 1);
  CHECK(linkd[0].job.payload == R"({"reply":"r1"})");
  // A reply that cannot be recorded (its id exists) queues nothing.
  CHECK_FALSE(st->create_reply(reply).ok());
  CHECK(st->list_jobs("linkd")->size() == 1);
}

TEST_CASE("a claimed job is leased: not claimed again before the lease ends, claimed again "
          "after it; finish removes it, retry delays it",
          "[store][jobs]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  auto other = where.open(); // another process, or host
  const auto a = st->enqueue({"linkd", "login_link", "a"}, k_t0).value();
  const auto b = st->enqueue({"linkd", "login_link", "b"}, k_t0 + 1).value();
  const auto m = st->enqueue({"milter", "failure_notification", "m"}, k_t0).value();
  CHECK(a != b);
  CHECK(a != m);
  // Not due yet.
  CHECK(st->claim_jobs("linkd", k_t0 - 1, 60 * k_sec, 10)->empty());

  auto claimed = st->claim_jobs("linkd", k_t0 + 10, 60 * k_sec, 1).value();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == a); // oldest due first
  CHECK(claimed[0].attempts == 1);
  CHECK(claimed[0].job.payload == "a");
  // The lease keeps it from everyone; the next one is still there.
  auto next = other->claim_jobs("linkd", k_t0 + 20, 60 * k_sec, 10).value();
  REQUIRE(next.size() == 1);
  CHECK(next[0].id == b);
  CHECK(other->claim_jobs("linkd", k_t0 + 30 * k_sec, 60 * k_sec, 10)->empty());
  // The claimer of `a` died: once its lease has passed, another claims it.
  auto again = other->claim_jobs("linkd", k_t0 + 61 * k_sec, 60 * k_sec, 1).value();
  REQUIRE(again.size() == 1);
  CHECK(again[0].id == a);
  CHECK(again[0].attempts == 2);

  // finish removes; finishing twice is fine.
  REQUIRE(other->finish_job(a).ok());
  REQUIRE(st->finish_job(a).ok());
  // retry: due again at its time, not before.
  REQUIRE(st->retry_job(b, k_t0 + 500 * k_sec).ok());
  CHECK(st->claim_jobs("linkd", k_t0 + 499 * k_sec, 60 * k_sec, 10)->empty());
  auto retried = st->claim_jobs("linkd", k_t0 + 500 * k_sec, 60 * k_sec, 10).value();
  REQUIRE(retried.size() == 1);
  CHECK(retried[0].id == b);
  CHECK(retried[0].attempts == 2);
  CHECK(st->retry_job(987654, k_t0).error().code == store::Errc::not_found);

  // The milter's queue is its own.
  auto mj = st->list_jobs("milter").value();
  REQUIRE(mj.size() == 1);
  CHECK(mj[0].id == m);
  CHECK(st->list_jobs("")->size() == 2);

  // Jobs are not evidence: purge leaves them.
  REQUIRE(st->purge(k_t0 + 1000 * k_sec, store::PurgeMode::apply).ok());
  CHECK(st->list_jobs("")->size() == 2);
}

TEST_CASE("concurrent claimers never get the same job", "[store][jobs]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  constexpr int k_jobs = 60;
  for (int i = 0; i < k_jobs; ++i) {
    REQUIRE(st->enqueue({"linkd", "login_link", std::to_string(i)}, k_t0 + i).ok());
  }
  // LMDB: two threads on one store (one environment per process). PostgreSQL: two threads,
  // each with its own store (its own connections), as two hosts.
  std::unique_ptr<store::Store> second;
  if (where.backend == test::Backend::postgresql) {
    second = where.open();
  }
  store::Store* stores[2] = {st.get(), second ? second.get() : st.get()};
  std::mutex mu;
  std::vector<std::uint64_t> got;
  bool failed = false;
  auto claimer = [&](store::Store* s) {
    for (int round = 0; round < 200; ++round) {
      auto c = s->claim_jobs("linkd", k_t0 + 1000 * k_sec, 600 * k_sec, 3);
      std::lock_guard lock(mu);
      if (!c) {
        failed = true;
        return;
      }
      for (const auto& j : c.value()) {
        got.push_back(j.id);
      }
      if (c->empty()) {
        return;
      }
    }
  };
  std::thread t1(claimer, stores[0]);
  std::thread t2(claimer, stores[1]);
  t1.join();
  t2.join();
  CHECK_FALSE(failed);
  CHECK(got.size() == static_cast<std::size_t>(k_jobs));
  CHECK(std::set<std::uint64_t>(got.begin(), got.end()).size() == got.size());
}

namespace {

void make_roles()
{
  test::PgCluster::get().sql(R"sql(
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pli_milter') THEN
    CREATE ROLE pli_milter LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pli_linkd') THEN
    CREATE ROLE pli_linkd LOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pli_admin') THEN
    CREATE ROLE pli_admin LOGIN; END IF;
END $$;)sql");
}

} // namespace

TEST_CASE("pg: pli-milter and pli-linkd queue, claim and finish jobs with their own roles",
          "[store][jobs][pg]")
{
  make_roles();
  test::PgDatabase db;
  for (const char* role : {"pli_milter", "pli_linkd"}) {
    INFO(role);
    auto as_role = store::open_postgresql(test::PgCluster::as_role(db.options, role));
    REQUIRE(as_role.ok());
    auto& s = *as_role.value();
    auto id = s.enqueue({role, "k", "p"}, k_t0);
    REQUIRE(id.ok());
    auto c = s.claim_jobs(role, k_t0, 60 * k_sec, 5);
    REQUIRE(c.ok());
    REQUIRE(c->size() == 1);
    REQUIRE(s.retry_job(id.value(), k_t0 + 1).ok());
    REQUIRE(s.finish_job(id.value()).ok());
    CHECK(s.list_jobs(role)->empty());
  }
}
