// What only the PostgreSQL store has, on the private cluster (pg_cluster.hpp): the schema
// version refused when absent, older or newer, and migrated once; two stores ("two hosts")
// appending to one message at once; events append-only in the database (the trigger and the
// roles' rights); missing_rights; the server stopped and started again under an open store;
// passwords kept out of messages.
#include "core/store/evidence.hpp"
#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/pg_cluster.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <thread>

using namespace pli;
using model::EventKind;

namespace {

constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

store::NewMessage message(const std::string& id, int recipients)
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_message_id(id + "@buyer.example");
  nm.message.set_subject("Objet");
  nm.message.set_type(1);
  nm.message.set_mode(1);
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_sent_at(k_t0);
  nm.message.set_original_sha256(util::sha256_hex("original " + id));
  nm.blobs[util::sha256_hex("original " + id)] = "original " + id;
  for (int i = 0; i < recipients; ++i) {
    store::pb::Delivery d;
    d.set_id(fmt::format("d{}x{}", id, i));
    d.set_recipient(fmt::format("r{}@remote.example", i));
    nm.message.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

// The roles the documentation names, made once in the cluster (migrate_schema grants them).
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

TEST_CASE("pg: a database without the schema, or with an older or newer one, is refused; "
          "migrating twice changes nothing",
          "[store][pg]")
{
  auto& cluster = test::PgCluster::get();
  const auto options = cluster.new_database();
  CHECK(store::schema_version() == 1);
  CHECK(store::schema_version_found(options).value() == 0);
  auto absent = store::open_postgresql(options);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().code == store::Errc::invalid);
  CHECK(absent.error().message.find("pli store migrate-schema") != std::string::npos);

  CHECK(store::migrate_schema(options).value() == 0);
  CHECK(store::schema_version_found(options).value() == 1);
  REQUIRE(store::open_postgresql(options).ok());
  {
    auto st = std::move(store::open_postgresql(options).value());
    REQUIRE(st->create_message(message("m1", 1)).ok());
  }
  // Again: nothing created twice, nothing lost.
  CHECK(store::migrate_schema(options).value() == 1);
  CHECK(store::open_postgresql(options).value()->get_message("m1").ok());

  const std::string db = options.url.substr(options.url.rfind('=') + 1);
  cluster.sql("UPDATE pli_schema SET version = 2", db);
  auto newer = store::open_postgresql(options);
  REQUIRE_FALSE(newer.ok());
  CHECK(newer.error().code == store::Errc::invalid);
  CHECK(newer.error().message.find("version 2") != std::string::npos);
  auto refused = store::migrate_schema(options);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == store::Errc::invalid);
  CHECK(store::schema_version_found(options).value() == 2);

  cluster.sql("UPDATE pli_schema SET version = 0", db);
  auto older = store::open_postgresql(options);
  REQUIRE_FALSE(older.ok());
  CHECK(older.error().code == store::Errc::invalid);
  CHECK(older.error().message.find("pli store migrate-schema") != std::string::npos);
}

TEST_CASE("pg: two stores (two hosts) appending to one message at once keep one dense, "
          "verified chain",
          "[store][pg]")
{
  test::PgDatabase db;
  auto host_a = db.open();
  auto host_b = db.open();
  REQUIRE(host_a->create_message(message("m1", 4)).ok());
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      store::Store& st = t % 2 == 0 ? *host_a : *host_b;
      for (int i = 0; i < 25; ++i) {
        store::NewEvent e{fmt::format("dm1x{}", (t + i) % 4), EventKind::read, k_t0 + i, {}, {}};
        e.detail["host"] = t % 2 == 0 ? "a" : "b";
        auto r = st.append_events({e, e});
        stored += r ? static_cast<int>(r->size()) : 0;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(stored == 6 * 25 * 2);
  for (auto* st : {host_a.get(), host_b.get()}) {
    auto events = st->events_of_message("m1");
    REQUIRE(events.ok());
    REQUIRE(events->size() == static_cast<std::size_t>(stored.load()));
    for (std::size_t i = 0; i < events->size(); ++i) {
      CHECK((*events)[i].seq() == i + 1);
    }
    CHECK(store::verify_chain(events.value()));
  }
}

TEST_CASE("pg: events are append-only in the database; each role has only its rights",
          "[store][pg]")
{
  make_roles();
  test::PgDatabase db; // migrate_schema grants the roles their rights
  using test::PgCluster;
  const auto milter = PgCluster::as_role(db.options, "pli_milter");
  const auto linkd = PgCluster::as_role(db.options, "pli_linkd");
  const auto admin = PgCluster::as_role(db.options, "pli_admin");

  // pli-milter records a message and its events with its own role.
  auto as_milter = store::open_postgresql(milter);
  REQUIRE(as_milter.ok());
  REQUIRE(as_milter.value()->create_message(message("m1", 2)).ok());
  REQUIRE(as_milter.value()->append_events({{"dm1x0", EventKind::sent, k_t0, {}, {}}}).ok());
  // ... and can neither change nor remove them.
  CHECK(PgCluster::try_sql("UPDATE events SET seq = seq", milter).find("permission denied") !=
        std::string::npos);
  CHECK(PgCluster::try_sql("DELETE FROM events", milter).find("permission denied") !=
        std::string::npos);
  CHECK(PgCluster::try_sql("DELETE FROM messages", milter).find("permission denied") !=
        std::string::npos);
  // Not even the owner, outside pli purge.
  CHECK(PgCluster::try_sql("DELETE FROM events", db.options).find("append-only") !=
        std::string::npos);
  CHECK(PgCluster::try_sql("UPDATE events SET record = record", db.options).find("append-only") !=
        std::string::npos);
  CHECK(PgCluster::try_sql("BEGIN; SET LOCAL pli.purge = on; UPDATE events SET seq = seq; COMMIT",
                           db.options)
            .find("append-only") != std::string::npos);
  CHECK(PgCluster::try_sql("TRUNCATE events", db.options).find("append-only") != std::string::npos);
  CHECK(db.open()->events_of_message("m1")->size() == 1);

  // pli-linkd appends events, replies and credentials, and cannot create a message.
  auto as_linkd = store::open_postgresql(linkd);
  REQUIRE(as_linkd.ok());
  auto& l = *as_linkd.value();
  REQUIRE(l.append_events({{"dm1x1", EventKind::read, k_t0 + 1, {{"ip", "192.0.2.1"}}, {}}}).ok());
  store::pb::Credential c;
  c.set_kind(2);
  c.set_address("alice@buyer.example");
  c.set_expires_at(k_t0 + 1000);
  REQUIRE(l.put_credential("Sx", c, k_t0).ok());
  REQUIRE(l.take_credential("Sx").ok());
  store::NewReply reply;
  reply.reply.set_id("r1");
  reply.reply.set_delivery("dm1x1");
  reply.reply.set_at(k_t0 + 2);
  reply.reply.set_text("Bien reçu.");
  reply.events.push_back({"dm1x1", EventKind::reply, k_t0 + 2, {{"reply", "r1"}}, {}});
  REQUIRE(l.create_reply(reply).ok());
  REQUIRE(l.add_reply_token("r1", util::sha256_hex("reply token"), k_t0 + 1000).ok());
  CHECK(l.get_token(util::sha256_hex("reply token"))->reply() == "r1");
  // pli-milter's other writes, with its role.
  REQUIRE(as_milter.value()->add_token("dm1x0", util::sha256_hex("token 2"), k_t0 + 1000).ok());
  REQUIRE(as_milter.value()
              ->append_events({{"dm1x0", EventKind::delivered, k_t0 + 3, {}, "dsn-1"},
                               {"dm1x0", EventKind::delivered, k_t0 + 3, {}, "dsn-1"}})
              .ok());
  auto refused = l.create_message(message("m2", 1));
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == store::Errc::io);
  CHECK_FALSE(db.open()->get_message("m2").ok());
  CHECK(PgCluster::try_sql("INSERT INTO deliveries (id, message, sent_at, status, type, "
                           "consultation, recipient, sender, from_header, words, record) VALUES "
                           "('x', 'x', 0, 1, 1, '', '', '', '', '', '')",
                           linkd)
            .find("permission denied") != std::string::npos);
  auto events = db.open()->events_of_message("m1");
  REQUIRE(events.ok());
  CHECK(events->size() == 4); // sent, read, reply, one delivered (the duplicate skipped)
  CHECK(store::verify_chain(events.value()));

  // What each role lacks, for pli doctor.
  CHECK(store::missing_rights(milter, "milter").value().empty());
  CHECK(store::missing_rights(linkd, "linkd").value().empty());
  CHECK(store::missing_rights(admin, "admin").value().empty());
  const auto lacks = store::missing_rights(linkd, "milter").value();
  CHECK(std::find(lacks.begin(), lacks.end(), "INSERT on table messages") != lacks.end());
  const auto not_admin = store::missing_rights(milter, "admin").value();
  CHECK(std::find(not_admin.begin(), not_admin.end(), "DELETE on table events") != not_admin.end());
  CHECK(store::missing_rights(milter, "nobody").error().code == store::Errc::invalid);

  // pli purge, with the admin role, removes the events with their message.
  auto as_admin = store::open_postgresql(admin);
  REQUIRE(as_admin.ok());
  auto purged = as_admin.value()->purge(k_t0 + 1, store::PurgeMode::apply);
  REQUIRE(purged.ok());
  CHECK(purged->events == 4);
  CHECK(db.open()->events_of_message("m1")->empty());
}

TEST_CASE("pg: the server stopped under an open store is `unavailable`, and the same store "
          "works again once it is back",
          "[store][pg]")
{
  test::PgDatabase db;
  auto st = db.open();
  REQUIRE(st->create_message(message("m1", 1)).ok());
  // Several pooled connections (the pool holds up to 4), all idle when the server stops.
  std::vector<std::thread> readers;
  std::atomic<int> read_ok{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        read_ok += st->get_message("m1").ok() ? 1 : 0;
      }
    });
  }
  for (auto& t : readers) {
    t.join();
  }
  REQUIRE(read_ok == 80);

  auto& cluster = test::PgCluster::get();
  cluster.stop();
  auto read = st->get_message("m1");
  REQUIRE_FALSE(read.ok());
  CHECK(read.error().code == store::Errc::unavailable);
  auto write = st->create_message(message("m2", 1));
  REQUIRE_FALSE(write.ok());
  CHECK(write.error().code == store::Errc::unavailable);
  auto append = st->append_events({{"dm1x0", EventKind::sent, k_t0, {}, {}}});
  REQUIRE_FALSE(append.ok());
  CHECK(append.error().code == store::Errc::unavailable);
  auto opened = store::open_postgresql(db.options);
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.error().code == store::Errc::unavailable);
  cluster.start();

  REQUIRE(st->get_message("m1").ok());
  REQUIRE(st->create_message(message("m2", 1)).ok());
  REQUIRE(st->append_events({{"dm1x0", EventKind::sent, k_t0, {}, {}}}).ok());
  CHECK_FALSE(st->get_message("m3").ok());
  CHECK(st->list({}).value().total == 2);
  CHECK(store::verify_chain(st->events_of_message("m1").value()));
}

TEST_CASE("pg: passwords never appear in URLs shown", "[store][pg]")
{
  CHECK(
      store::redact_url("postgresql://pli_milter:s3cret@db.example.org/pli?sslmode=verify-full") ==
      "postgresql://pli_milter:***@db.example.org/pli?sslmode=verify-full");
  CHECK(store::redact_url("postgresql://pli_milter@db.example.org/pli") ==
        "postgresql://pli_milter@db.example.org/pli");
  CHECK(store::redact_url("host=db user=pli password=s3cret dbname=pli") ==
        "host=db user=pli password=*** dbname=pli");
  CHECK(store::redact_url("postgresql://db/pli?user=u&password=s3cret") ==
        "postgresql://db/pli?user=u&password=***");
  store::PgOptions o;
  o.url = "postgresql://u:s3cret@/nodb?host=/nonexistent-pli-socket-dir";
  o.connect_timeout_s = 1;
  auto r = store::open_postgresql(o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == store::Errc::unavailable);
  CHECK(r.error().message.find("s3cret") == std::string::npos);
  o.url = "postgresql://u:s3cret@[bad";
  auto bad = store::open_postgresql(o);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == store::Errc::invalid);
  CHECK(bad.error().message.find("s3cret") == std::string::npos);
}
