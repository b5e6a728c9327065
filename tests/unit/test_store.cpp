// The store, LMDB and PostgreSQL alike: round trips, the hash chain, statuses and indexes, listing
// filters with pagination, and crash safety of a write (a process killed mid-transaction).
#include "core/store/evidence.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
#include "core/util/text.hpp"

#include "tests/unit/store_backends.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;
using namespace pli;
using model::EventKind;
using model::Status;

namespace {

using pli::test::TempDir;

std::unique_ptr<store::Store> open(const fs::path& p)
{
  auto s = store::open_lmdb({p.string(), 64, false});
  REQUIRE(s.ok());
  return std::move(s.value());
}

constexpr util::Micros k_day = 86400LL * 1000000LL;
constexpr util::Micros k_t0 = 1656685605LL * 1000000LL; // 2022-07-01 14:26:45 UTC

// A message with one delivery per recipient, sent at k_t0 + offset days.
store::NewMessage make(const std::string& id, std::vector<std::string> rcpts, int offset_days,
                       model::MessageType type = model::MessageType::libre,
                       const std::string& subject = "Objet", const std::string& consultation = "",
                       const std::string& sender = "alice@buyer.example")
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_message_id(id + "@buyer.example");
  nm.message.set_subject(subject);
  nm.message.set_type(static_cast<std::uint32_t>(type));
  nm.message.set_mode(1);
  nm.message.set_sender(sender);
  nm.message.set_consultation(consultation);
  nm.message.set_sent_at(k_t0 + offset_days * k_day);
  nm.message.set_text_body("Bonjour,\nveuillez trouver ci-joint la décision.");
  std::string original = "Subject: " + subject + "\r\n\r\nbody of " + id + "\r\n";
  nm.message.set_original_sha256(util::sha256_hex(original));
  nm.blobs[util::sha256_hex(original)] = original;
  nm.blobs[util::sha256_hex("shared attachment")] = "shared attachment";
  int i = 0;
  for (const auto& r : rcpts) {
    store::pb::Delivery d;
    d.set_id("d" + id.substr(1) + std::to_string(i++));
    d.set_recipient(r);
    d.set_token_hash(util::sha256_hex("token-" + d.id()));
    d.set_idempotency_key("key-" + d.id());
    nm.message.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

} // namespace

TEST_CASE("a message round-trips with its deliveries, tokens and blobs", "[store]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  REQUIRE(st->create_message(make("m1", {"bob@remote.example", "carol@other.example"}, 0)).ok());

  auto m = st->get_message("m1");
  REQUIRE(m.ok());
  CHECK(m->subject() == "Objet");
  CHECK(m->version() == 1);
  CHECK(m->delivery_ids_size() == 2);
  auto d = st->get_delivery("d10");
  REQUIRE(d.ok());
  CHECK(d->recipient() == "bob@remote.example");
  CHECK(d->message() == "m1");
  CHECK(static_cast<Status>(d->status()) == Status::sending);
  auto tok = st->get_token(util::sha256_hex("token-d10"));
  REQUIRE(tok.ok());
  CHECK(tok->delivery() == "d10");
  CHECK(st->get_blob(util::sha256_hex("shared attachment")).value() == "shared attachment");
  CHECK(st->find_by_message_id("m1@buyer.example").value() == "m1");
  CHECK(st->find_by_idempotency_key("key-d11").value() == "d11");

  // Not found is a value, with its code.
  auto missing = st->get_message("nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == store::Errc::not_found);

  // Ids are unique: a second message with the same id is a conflict, and nothing of it stays.
  auto again = make("m1", {"zed@remote.example"}, 1);
  auto r = st->create_message(again);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == store::Errc::conflict);

  // A second message sharing an attachment stores it once (content-addressed).
  REQUIRE(st->create_message(make("m2", {"dan@remote.example"}, 1)).ok());
  CHECK(st->get_blob(util::sha256_hex("shared attachment")).ok());

  // Reopening (another process would do the same) sees everything.
  st.reset();
  auto st2 = where.open();
  CHECK(st2->get_delivery("d20").ok());
}

TEST_CASE("events are chained, and statuses follow them", "[store]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  REQUIRE(st->create_message(make("m1", {"bob@remote.example", "carol@other.example"}, 0)).ok());
  REQUIRE(st->append_events(
                {{"d10", EventKind::sent, k_t0, {}, {}}, {"d11", EventKind::sent, k_t0, {}, {}}})
              .ok());
  REQUIRE(
      st->append_events({{"d10", EventKind::delivered, k_t0 + 1, {{"status", "2.0.0"}}, {}}}).ok());
  REQUIRE(
      st->append_events({{"d11", EventKind::failed, k_t0 + 2, {{"status", "5.1.1"}}, {}}}).ok());
  REQUIRE(
      st->append_events({{"d10", EventKind::fetched, k_t0 + 3, {{"ip", "192.0.2.1"}}, {}}}).ok());
  CHECK(static_cast<Status>(st->get_delivery("d10")->status()) == Status::delivered);
  REQUIRE(st->append_events({{"d10", EventKind::read, k_t0 + 4, {{"ip", "192.0.2.1"}}, {}}}).ok());
  // A late failure report never undoes a read.
  REQUIRE(st->append_events({{"d10", EventKind::failed, k_t0 + 5, {}, {}}}).ok());

  auto d10 = st->get_delivery("d10").value();
  CHECK(static_cast<Status>(d10.status()) == Status::read);
  CHECK(d10.sent_at() == k_t0);
  CHECK(d10.delivered_at() == k_t0 + 1);
  CHECK(d10.read_at() == k_t0 + 4);
  CHECK(static_cast<Status>(st->get_delivery("d11")->status()) == Status::not_delivered);

  auto events = st->events_of_message("m1").value();
  REQUIRE(events.size() == 7);
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].seq() == i + 1);
  }
  CHECK(events[0].prev_hash().empty());
  CHECK(events[1].prev_hash() == events[0].hash());
  CHECK(store::verify_chain(events));
  // Altering any recorded field breaks the chain.
  auto tampered = events;
  (*tampered[2].mutable_detail())["status"] = "2.0.1";
  CHECK_FALSE(store::verify_chain(tampered));

  auto unknown = st->append_events({{"dnope", EventKind::read, k_t0, {}, {}}});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.error().code == store::Errc::not_found);
}

TEST_CASE("list filters combine and paginate newest first", "[store]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  using T = model::MessageType;
  // 25 messages, one a day; every 5th is a rejection for consultation 2022AK_014.
  for (int i = 0; i < 25; ++i) {
    bool rejet = i % 5 == 0;
    std::string subject =
        rejet ? "Réponse à votre offre – rejet" : "Information n°" + std::to_string(i);
    REQUIRE(st->create_message(make("m" + std::to_string(100 + i),
                                    {"rcpt" + std::to_string(i) + "@Remote.example"}, i,
                                    rejet ? T::rejet : T::libre, subject, rejet ? "2022AK_014" : "",
                                    i % 2 == 0 ? "alice@buyer.example" : "bob@buyer.example"))
                .ok());
  }
  // Deliveries of messages 100..104 get read.
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        st->append_events({{"d" + std::to_string(100 + i) + "0", EventKind::read, k_t0, {}, {}}})
            .ok());
  }

  store::Query all;
  auto r = st->list(all).value();
  CHECK(r.total == 25);
  REQUIRE(r.items.size() == 10);
  CHECK(r.items[0].message.id() == "m124"); // newest first
  CHECK(r.items[9].message.id() == "m115");

  store::Query page3;
  page3.page = 3;
  auto r3 = st->list(page3).value();
  CHECK(r3.total == 25);
  REQUIRE(r3.items.size() == 5);
  CHECK(r3.items[4].message.id() == "m100");

  store::Query beyond;
  beyond.page = 4;
  CHECK(st->list(beyond).value().items.empty());

  store::Query by_type;
  by_type.type = T::rejet;
  CHECK(st->list(by_type).value().total == 5);

  store::Query by_consultation;
  by_consultation.consultation = "2022AK_014";
  CHECK(st->list(by_consultation).value().total == 5);

  store::Query keywords;
  keywords.keywords = "reponse OFFRE"; // accents and case ignored, every word required
  CHECK(st->list(keywords).value().total == 5);
  keywords.keywords = "repon"; // a word prefix
  CHECK(st->list(keywords).value().total == 5);
  keywords.keywords = "decision"; // from the body ("décision")
  CHECK(st->list(keywords).value().total == 25);
  keywords.keywords = "reponse absent";
  CHECK(st->list(keywords).value().total == 0);

  store::Query read;
  read.statuses = {Status::read};
  CHECK(st->list(read).value().total == 5);
  store::Query sending_or_read;
  sending_or_read.statuses = {Status::read, Status::sending};
  CHECK(st->list(sending_or_read).value().total == 25);

  store::Query combined;
  combined.statuses = {Status::read};
  combined.sender = "ALICE";
  combined.type = T::rejet;
  auto rc = st->list(combined).value();
  CHECK(rc.total == 1); // message 100 only: read, rejet, alice
  CHECK(rc.items.at(0).message.id() == "m100");

  store::Query exact_senders; // the buyers' area: exact addresses, never a substring
  exact_senders.senders = {"Alice@buyer.example"};
  CHECK(st->list(exact_senders).value().total == 13);
  exact_senders.senders = {"alice@buyer.example", "bob@buyer.example"};
  CHECK(st->list(exact_senders).value().total == 25);
  exact_senders.senders = {"alice"};
  CHECK(st->list(exact_senders).value().total == 0);
  exact_senders.senders = {"bob@buyer.example"};
  exact_senders.type = T::rejet;
  CHECK(st->list(exact_senders).value().total == 2); // messages 105 and 115

  store::Query rcpt;
  rcpt.recipient = "rcpt1";
  CHECK(st->list(rcpt).value().total == 11); // rcpt1, rcpt10..19

  store::Query range;
  range.since = k_t0 + 10 * k_day;
  range.until = k_t0 + 15 * k_day;
  auto rr = st->list(range).value();
  CHECK(rr.total == 5);
  CHECK(rr.items.front().message.id() == "m114");

  store::Query small_pages;
  small_pages.per_page = 7;
  small_pages.page = 4;
  auto rs = st->list(small_pages).value();
  CHECK(rs.total == 25);
  CHECK(rs.items.size() == 4);
}

TEST_CASE("folding for keywords removes case and accents", "[store]")
{
  CHECK(util::fold("Réponse À Œuvre ÇA") == "reponse a oeuvre ca");
  auto words = store::index_words("L'offre n°12 — réponse, RÉPONSE; a");
  CHECK(words == std::vector<std::string>{"offre", "12", "reponse"});
}

TEST_CASE("a process killed in the middle of writes leaves a consistent store", "[store][crash]")
{
  // The child reports each committed write on a pipe and goes on writing at once; the
  // parent kills it when it has read a number of reports that differs each round, so the
  // SIGKILL lands while a later write is in flight. Nothing here depends on how fast the
  // machine is: a child that reaches k_max_writes waits to be killed instead of filling
  // the map, and the parent waits for the reports, not for a time.
  constexpr int k_max_writes = 40; // per round: 4 rounds x 40 x 200 KB stay well inside 64 MB
  constexpr int k_kill_after[] = {1, 7, 19, 33};
  TempDir dir;
  {
    open(dir.path);
  } // create the environment
  for (int round = 0; round < 4; ++round) {
    int progress[2];
    REQUIRE(::pipe(progress) == 0);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::close(progress[0]);
      // Writes messages of 3 deliveries each, with events, as fast as it can.
      auto s = store::open_lmdb({dir.path.string(), 64, false});
      if (!s) {
        _exit(3);
      }
      for (int i = 0; i < k_max_writes; ++i) {
        std::string id = "m" + std::to_string(round) + "x" + std::to_string(i);
        auto nm = make(id, {"a@r.example", "b@r.example", "c@r.example"}, 0);
        nm.blobs[util::sha256_hex(id)] = std::string(200000, static_cast<char>('a' + i % 26));
        if (!s.value()->create_message(nm).ok()) {
          _exit(4);
        }
        std::vector<store::NewEvent> evs;
        for (const auto& d : nm.deliveries) {
          evs.push_back({d.id(), EventKind::sent, k_t0, {}, {}});
        }
        if (!s.value()->append_events(evs).ok()) {
          _exit(5);
        }
        const char done = 'w';
        if (::write(progress[1], &done, 1) != 1) {
          _exit(6);
        }
      }
      for (;;) {
        ::pause(); // until the parent's SIGKILL
      }
    }
    ::close(progress[1]);
    // Wait for the round's number of committed writes (two per report). A child that dies
    // first closes the pipe: read() returns 0 and the REQUIRE below names its exit status.
    int reports = 0;
    char c = 0;
    while (reports < k_kill_after[round] && ::read(progress[0], &c, 1) == 1) {
      ++reports;
    }
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(progress[0]);
    INFO("round " << round << ": " << reports << " writes reported; child exit status "
                  << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    REQUIRE(reports == k_kill_after[round]);
    REQUIRE(WIFSIGNALED(status));

    // Every message the index shows is complete; nothing half-written is visible.
    auto st = open(dir.path);
    store::Query q;
    q.per_page = 100000;
    auto all = st->list(q);
    REQUIRE(all.ok());
    CHECK(all->total % 3 == 0);
    std::set<std::string> messages;
    for (const auto& item : all->items) {
      messages.insert(item.message.id());
    }
    for (const auto& id : messages) {
      auto m = st->get_message(id);
      REQUIRE(m.ok());
      REQUIRE(m->delivery_ids_size() == 3);
      for (const auto& did : m->delivery_ids()) {
        REQUIRE(st->get_delivery(did).ok());
      }
      if (id.rfind("mafter", 0) != 0) {
        REQUIRE(st->get_blob(util::sha256_hex(id)).value().size() == 200000);
      }
      auto events = st->events_of_message(id).value();
      CHECK((events.empty() || events.size() == 3)); // a batch of events is all or nothing
      CHECK(store::verify_chain(events));
    }
    // And the store still takes writes.
    REQUIRE(st->create_message(make("mafter" + std::to_string(round),
                                    {"x@r.example", "y@r.example", "z@r.example"}, 0))
                .ok());
  }
}

TEST_CASE("a reply and its event are recorded in one transaction, or not at all", "[store]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  REQUIRE(st->create_message(make("m7", {"bob@remote.example"}, 0)).ok());
  auto reply = [](const std::string& id, const std::string& event_delivery) {
    store::NewReply nr;
    nr.reply.set_id(id);
    nr.reply.set_delivery("d70");
    nr.reply.set_at(k_t0);
    nr.reply.set_text("Bien reçu, merci.");
    nr.reply.set_token_hash(std::string(64, id.back()));
    nr.blobs["ab"] = "attachment bytes";
    store::NewEvent ev;
    ev.delivery = event_delivery;
    ev.kind = EventKind::reply;
    ev.at = k_t0;
    ev.detail = {{"reply", id}};
    nr.events.push_back(ev);
    return nr;
  };
  REQUIRE(st->create_reply(reply("r1", "d70")).ok());
  CHECK(st->get_reply("r1").value().message() == "m7");
  auto events = st->events_of_message("m7").value();
  REQUIRE(events.size() == 1);
  CHECK(events[0].detail().at("reply") == "r1");
  CHECK(static_cast<Status>(st->get_delivery("d70").value().status()) == Status::reply_unread);

  // The event cannot be recorded (unknown delivery): nothing of the reply stays.
  auto failed = st->create_reply(reply("r2", "dnope"));
  REQUIRE_FALSE(failed.ok());
  CHECK(failed.error().code == store::Errc::not_found);
  CHECK_FALSE(st->get_reply("r2").ok());
  CHECK(st->get_delivery("d70").value().reply_ids_size() == 1);
  CHECK(st->events_of_message("m7").value().size() == 1);
}
