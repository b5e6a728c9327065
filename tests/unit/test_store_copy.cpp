// `pli store copy` at the store level (core/store/copy.hpp): everything of one store written
// into another and read back identical, a re-run that adds nothing, a message that gained
// events since the last copy extended, a disagreement refused without overwriting, and a
// forged bundle refused.
#include "core/store/copy.hpp"
#include "core/store/evidence.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/store_backends.hpp"

#include <catch2/catch.hpp>

using namespace pli;
using model::EventKind;
using model::Status;

namespace {

constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;
constexpr util::Micros k_day = 86400LL * 1000000LL;

store::NewMessage make(const std::string& id, const std::vector<std::string>& rcpts, int day)
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_message_id(id + "@buyer.example");
  nm.message.set_subject("Décision d'attribution " + id);
  nm.message.set_type(static_cast<std::uint32_t>(model::MessageType::rejet));
  nm.message.set_mode(1);
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_consultation("AO-2026-" + id);
  nm.message.set_sent_at(k_t0 + day * k_day);
  nm.message.set_text_body("Madame, Monsieur,\nvotre offre n'a pas été retenue.");
  const std::string original = "Subject: " + id + "\r\n\r\nbody\r\n";
  nm.message.set_original_sha256(util::sha256_hex(original));
  nm.message.set_original_size(original.size());
  nm.blobs[util::sha256_hex(original)] = original;
  const std::string pdf = "%PDF-1.4 shared attachment";
  auto* a = nm.message.add_attachments();
  a->set_name("rapport.pdf");
  a->set_media_type("application/pdf");
  a->set_size(pdf.size());
  a->set_sha256(util::sha256_hex(pdf));
  nm.blobs[util::sha256_hex(pdf)] = pdf;
  int i = 0;
  for (const auto& r : rcpts) {
    store::pb::Delivery d;
    d.set_id("d" + id.substr(1) + std::to_string(i++));
    d.set_recipient(r);
    d.set_created_at(nm.message.sent_at());
    d.set_expires_at(nm.message.sent_at() + 30 * k_day);
    d.set_token_hash(util::sha256_hex("token-" + d.id()));
    d.set_idempotency_key("key-" + d.id());
    nm.message.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

store::NewEvent event(const std::string& delivery, EventKind kind, util::Micros at,
                      std::string dedupe = "")
{
  store::NewEvent e;
  e.delivery = delivery;
  e.kind = kind;
  e.at = at;
  e.detail["ip"] = "192.0.2.7";
  e.dedupe_key = std::move(dedupe);
  return e;
}

// Three messages: sent and delivered, read and replied to, and one failed; an extra link
// token, a dedupe key, a consultation and a credential.
void populate(store::Store& st)
{
  REQUIRE(st.create_message(make("m1", {"bob@remote.example", "carol@other.example"}, 0)).ok());
  REQUIRE(st.create_message(make("m2", {"dan@remote.example"}, 1)).ok());
  REQUIRE(st.create_message(make("m3", {"eve@remote.example"}, 2)).ok());
  REQUIRE(st.append_events({event("d10", EventKind::sent, k_t0 + 1),
                            event("d11", EventKind::sent, k_t0 + 2),
                            event("d10", EventKind::delivered, k_t0 + 3, "dsn-d10-1")})
              .ok());
  REQUIRE(st.append_events({event("d20", EventKind::sent, k_t0 + k_day + 1),
                            event("d20", EventKind::read, k_t0 + k_day + 2)})
              .ok());
  REQUIRE(st.append_events({event("d30", EventKind::sent, k_t0 + 2 * k_day + 1),
                            event("d30", EventKind::failed, k_t0 + 2 * k_day + 2)})
              .ok());
  REQUIRE(st.add_token("d10", util::sha256_hex("retry-token-d10"), k_t0 + 40 * k_day).ok());
  store::NewReply r;
  r.reply.set_id("r1");
  r.reply.set_delivery("d20");
  r.reply.set_message("m2");
  r.reply.set_from("dan@remote.example");
  r.reply.set_at(k_t0 + k_day + 3);
  r.reply.set_text("Voici la pièce demandée.");
  r.reply.set_token_hash(util::sha256_hex("reply-token-r1"));
  const std::string kbis = "Kbis de la société";
  auto* a = r.reply.add_attachments();
  a->set_name("kbis.pdf");
  a->set_size(kbis.size());
  a->set_sha256(util::sha256_hex(kbis));
  r.blobs[util::sha256_hex(kbis)] = kbis;
  r.token_expires_at = k_t0 + 60 * k_day;
  r.events.push_back(event("d20", EventKind::reply, k_t0 + k_day + 3));
  REQUIRE(st.create_reply(r).ok());
  store::pb::Consultation c;
  c.set_reference("AO-2026-m1");
  c.set_title("Entretien des espaces verts");
  c.set_object("Lot 2");
  REQUIRE(st.put_consultation(c).ok());
  store::pb::Credential cred;
  cred.set_kind(2);
  cred.set_address("alice@buyer.example");
  cred.set_created_at(k_t0);
  cred.set_expires_at(k_t0 + 1000 * k_day);
  REQUIRE(st.put_credential("s" + util::sha256_hex("session"), cred, k_t0).ok());
}

// Everything a reader of `copy` can ask, compared with `source`.
void require_same(store::Store& source, store::Store& copy)
{
  for (const std::string id : {"m1", "m2", "m3"}) {
    CAPTURE(id);
    auto a = source.get_message(id);
    auto b = copy.get_message(id);
    REQUIRE(b.ok());
    CHECK(a->SerializeAsString() == b->SerializeAsString());
    auto ea = source.events_of_message(id).value();
    auto eb = copy.events_of_message(id).value();
    REQUIRE(ea.size() == eb.size());
    for (std::size_t i = 0; i < ea.size(); ++i) {
      CHECK(ea[i].SerializeAsString() == eb[i].SerializeAsString());
    }
    CHECK(store::verify_chain(eb));
    for (const auto& did : a->delivery_ids()) {
      CHECK(source.get_delivery(did)->SerializeAsString() ==
            copy.get_delivery(did)->SerializeAsString());
    }
    CHECK(copy.get_blob(a->original_sha256()).value() ==
          source.get_blob(a->original_sha256()).value());
  }
  CHECK(copy.get_reply("r1")->text() == "Voici la pièce demandée.");
  CHECK(copy.get_blob(util::sha256_hex("Kbis de la société")).ok());
  CHECK(copy.get_token(util::sha256_hex("retry-token-d10"))->delivery() == "d10");
  CHECK(copy.get_token(util::sha256_hex("token-d11"))->delivery() == "d11");
  CHECK(copy.get_token(util::sha256_hex("reply-token-r1"))->reply() == "r1");
  CHECK(copy.find_by_idempotency_key("key-d20").value() == "d20");
  CHECK(copy.find_by_message_id("m3@buyer.example").value() == "m3");
  CHECK(copy.get_consultation("AO-2026-m1")->title() == "Entretien des espaces verts");
  CHECK(copy.get_credential("s" + util::sha256_hex("session"))->address() == "alice@buyer.example");
  // A DSN recorded in the source is a duplicate in the copy too.
  auto dup = copy.append_events({event("d10", EventKind::delivered, k_t0 + 9, "dsn-d10-1")});
  REQUIRE(dup.ok());
  CHECK(dup->empty());
  // The indexes: every filter finds the same rows in both.
  for (auto status : {Status::delivered, Status::read, Status::not_delivered, Status::sending,
                      Status::reply_unread}) {
    store::Query q;
    q.statuses = {status};
    CHECK(source.list(q)->total == copy.list(q)->total);
  }
  store::Query words;
  words.keywords = "retenue";
  CHECK(copy.list(words)->total == 4);
  store::Query rcpt;
  rcpt.recipient = "REMOTE.example";
  CHECK(copy.list(rcpt)->total == 3);
  store::Query consult;
  consult.consultation = "AO-2026-m2";
  CHECK(copy.list(consult)->total == 1);
}

} // namespace

TEST_CASE("a store copied into another reads back identical, and a re-run adds nothing",
          "[store][copy]")
{
  // Every direction: LMDB to LMDB (a backup), LMDB to PostgreSQL (a move to several hosts),
  // PostgreSQL to LMDB (a backup that reads without a server), PostgreSQL to PostgreSQL.
  test::AnyStore from(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  test::AnyStore into(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(from.name() << " to " << into.name());
  auto source = from.open();
  auto target = into.open();
  populate(*source);

  auto first = store::copy(*source, *target);
  REQUIRE(first.ok());
  CHECK(first->problems.empty());
  CHECK(first->ok());
  CHECK(first->messages == 3);
  CHECK(first->added == 3);
  CHECK(first->verified == 3);
  CHECK(first->events == 8);
  CHECK(first->source_deliveries == 4);
  CHECK(first->copy_deliveries == 4);
  require_same(*source, *target);

  auto again = store::copy(*source, *target);
  REQUIRE(again.ok());
  CHECK(again->ok());
  CHECK(again->same == 3);
  CHECK(again->added == 0);
  CHECK(again->loose_written == 0);

  // Events recorded in the source since: the re-run extends the copy, statuses follow.
  REQUIRE(source
              ->append_events({event("d11", EventKind::delivered, k_t0 + 20),
                               event("d11", EventKind::read, k_t0 + 21)})
              .ok());
  auto third = store::copy(*source, *target);
  REQUIRE(third.ok());
  CHECK(third->ok());
  CHECK(third->extended == 1);
  CHECK(third->same == 2);
  CHECK(static_cast<Status>(target->get_delivery("d11")->status()) == Status::read);
  store::Query sent;
  sent.statuses = {Status::sending};
  CHECK(target->list(sent)->total == 0);
  require_same(*source, *target);

  // And back: the copy copied into a third store, of the source's kind, is the source again.
  test::AnyStore third_store(from.backend);
  auto back = third_store.open();
  auto fourth = store::copy(*target, *back);
  REQUIRE(fourth.ok());
  CHECK(fourth->ok());
  require_same(*source, *back);
}

TEST_CASE("a copy never overwrites a message the two stores disagree on, nor takes a forged "
          "chain",
          "[store][copy]")
{
  test::AnyStore from(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  test::AnyStore into(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(from.name() << " to " << into.name());
  auto source = from.open();
  auto target = into.open();
  populate(*source);
  REQUIRE(store::copy(*source, *target).ok());

  // The copy recorded an event the source does not have: the source's next events differ.
  REQUIRE(target->append_events({event("d30", EventKind::read, k_t0 + 50)}).ok());
  REQUIRE(source->append_events({event("d30", EventKind::delivered, k_t0 + 51)}).ok());
  auto r = store::copy(*source, *target);
  REQUIRE(r.ok());
  REQUIRE(r->problems.size() == 1);
  CHECK(r->problems[0].rfind("m3:", 0) == 0);
  CHECK_FALSE(r->ok());
  CHECK(target->events_of_message("m3")->back().kind() ==
        static_cast<std::uint32_t>(EventKind::read)); // left as it was
  CHECK(r->same == 2);

  // A bundle whose events were altered after they were chained is refused.
  store::MessageBundle forged;
  REQUIRE(source
              ->export_messages([&](const store::MessageBundle& b) {
                if (b.message.id() == "m1") {
                  forged = b;
                }
                return true;
              })
              .ok());
  REQUIRE(forged.events.size() == 3);
  (*forged.events[2].mutable_detail())["ip"] = "203.0.113.66";
  test::AnyStore other(into.backend);
  auto third = other.open();
  auto refused = third->import_message(forged);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().code == store::Errc::invalid);
  CHECK(third->get_message("m1").error().code == store::Errc::not_found);

  // A blob that does not match its name is refused too.
  forged.events.pop_back();
  forged.blobs.begin()->second += "x";
  auto bad_blob = third->import_message(forged);
  REQUIRE_FALSE(bad_blob.ok());
  CHECK(bad_blob.error().code == store::Errc::invalid);
}
