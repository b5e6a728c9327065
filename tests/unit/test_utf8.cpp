// Text that is not valid UTF-8: the sanitiser (util/text.hpp), the store refusing records
// it would not read back, and stores poisoned by older versions (records written raw under
// the store's key layout) read, purged, checked and repaired with their chain verifying.
#include "core/store/evidence.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include "tests/unit/store_backends.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <google/protobuf/stubs/common.h>
#include <lmdb.h>
#include <nlohmann/json.hpp>

#include <random>

using namespace pli;
using pli::test::TempDir;

namespace {

std::unique_ptr<store::Store> open_store(const std::filesystem::path& p)
{
  auto s = store::open_lmdb({p.string(), 64, false});
  REQUIRE(s.ok());
  return std::move(s.value());
}

// What nlohmann::json writes for `s` with error_handler_t::replace, read back.
std::string json_replaced(const std::string& s)
{
  const std::string dumped =
      nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(dumped).get<std::string>();
}

constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

store::NewMessage message(const std::string& id, std::vector<std::string> rcpts)
{
  store::NewMessage nm;
  nm.message.set_id(id);
  nm.message.set_message_id(id + "@buyer.example");
  nm.message.set_subject("Objet");
  nm.message.set_type(1);
  nm.message.set_mode(1);
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_sent_at(k_t0);
  int i = 0;
  for (const auto& r : rcpts) {
    store::pb::Delivery d;
    d.set_id("d" + id.substr(1) + std::to_string(i++));
    d.set_recipient(r);
    d.set_token_hash(util::sha256_hex("token-" + d.id()));
    nm.message.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

store::NewEvent event(const std::string& delivery, model::EventKind kind, util::Micros at,
                      std::map<std::string, std::string> detail = {})
{
  return store::NewEvent{delivery, kind, at, std::move(detail), ""};
}

std::string seq_key(const std::string& message, std::uint32_t seq)
{
  std::string k = message;
  k.push_back('\0');
  for (int shift = 24; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>((seq >> shift) & 0xff));
  }
  return k;
}

// Writes `value` under `key` in database `db` with LMDB itself, as an older pli's store did
// (its serialiser only logs invalid UTF-8). The store must be closed meanwhile.
void put_raw(const std::filesystem::path& dir, const char* db, const std::string& key,
             const std::string& value)
{
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 32);
  mdb_env_set_mapsize(env, 64u * 1024 * 1024);
  REQUIRE(mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0660) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi dbi = 0;
  REQUIRE(mdb_dbi_open(txn, db, 0, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  REQUIRE(mdb_put(txn, dbi, &k, &v, 0) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

// The read event an older pli-linkd recorded for `User-Agent: Mozilla\xff\xfe`, chained
// after `prev` (its hash computed as it was: canonical_event_json writes U+FFFD).
store::pb::Event poisoned_read(const store::pb::Event& prev)
{
  store::pb::Event e;
  e.set_version(1);
  e.set_message(prev.message());
  e.set_delivery(prev.delivery());
  e.set_seq(prev.seq() + 1);
  e.set_kind(static_cast<std::uint32_t>(model::EventKind::read));
  e.set_at(prev.at() + 1000);
  (*e.mutable_detail())["ip"] = "192.0.2.7";
  (*e.mutable_detail())["user_agent"] = "Mozilla\xff\xfe";
  e.set_prev_hash(prev.hash());
  e.set_hash(store::event_hash(e));
  return e;
}

} // namespace

TEST_CASE("to_utf8 repairs ill-formed UTF-8 with U+FFFD per maximal subpart", "[utf8]")
{
  const std::string fffd = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> table = {
      {"", ""},
      {"plain ascii", "plain ascii"},
      {"accentué œ €", "accentué œ €"},
      {"Mozilla\xff\xfe", "Mozilla" + fffd + fffd},
      {"\xc3", fffd},            // cut short by the end
      {"a\xe2\x82", "a" + fffd}, // one U+FFFD for the cut sequence
      {"\xe2\x82"
       "b",
       fffd + "b"},                                     // the byte that does not fit starts anew
      {"\xc0\xaf", fffd + fffd},                        // overlong
      {"\xed\xa0\x80", fffd + fffd + fffd},             // surrogate
      {"\xf4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},         // U+1F600 kept
      {std::string("a\0b", 3), std::string("a\0b", 3)}, // NUL is UTF-8
  };
  for (const auto& [in, want] : table) {
    CAPTURE(util::hex_encode(in));
    CHECK(util::to_utf8(in) == want);
    CHECK(util::is_utf8(util::to_utf8(in)));
  }
}

TEST_CASE("to_utf8 and is_utf8 agree with nlohmann::json and protobuf on random bytes", "[utf8]")
{
  std::mt19937 rng(16);
  std::uniform_int_distribution<int> len(0, 12);
  // Bytes around the boundaries of UTF-8's table, and some text.
  const std::vector<unsigned char> alphabet = {'a',  0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                               0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
                                               0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xfe, 0xff};
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  for (int i = 0; i < 100000; ++i) {
    std::string s;
    for (int n = len(rng); n > 0; --n) {
      s.push_back(static_cast<char>(alphabet[pick(rng)]));
    }
    CAPTURE(util::hex_encode(s));
    REQUIRE(util::is_utf8(s) == google::protobuf::internal::IsStructurallyValidUTF8(s));
    REQUIRE(util::to_utf8(s) == json_replaced(s));
  }
}

TEST_CASE("clean_line and clean_text strip C0 and C1 controls", "[utf8]")
{
  CHECK(util::clean_line("a\r\nb\tc\x1b[31m\x7f") == "a  b c [31m ");
  CHECK(util::clean_line("x\xc2\x85y\xc2\x9fz\xc2\xa0") == "x y z\xc2\xa0"); // C1; NBSP kept
  CHECK(util::clean_line("Mozilla\xff") == "Mozilla\xef\xbf\xbd");
  CHECK(util::clean_line("ééé", 5) == "éé"); // never cut inside a character
  CHECK(util::clean_text(std::string("l1\nl2\r\n\tl3\x00\x1b", 12)) == "l1\nl2\r\n\tl3  ");
}

TEST_CASE("the store refuses with invalid every record it would not read back", "[utf8]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  const auto invalid = store::Errc::invalid;

  auto bad_message = message("m1", {"bob@remote.example"});
  bad_message.message.set_subject("Objet \xff");
  auto r = st->create_message(bad_message);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == invalid);
  CHECK(r.error().message.find("subject") != std::string::npos);
  CHECK(st->get_message("m1").error().code == store::Errc::not_found);

  auto bad_delivery = message("m1", {"bob\xfe@remote.example"});
  CHECK(st->create_message(bad_delivery).error().code == invalid);

  REQUIRE(st->create_message(message("m1", {"bob@remote.example", "carol@other.example"})).ok());
  auto ev = st->append_events(
      {event("d10", model::EventKind::read, k_t0 + 1, {{"user_agent", "Mozilla\xff\xfe"}})});
  REQUIRE_FALSE(ev.ok());
  CHECK(ev.error().code == invalid);
  CHECK(ev.error().message.find("user_agent") != std::string::npos);
  // Nothing of it recorded; the chain and the other recipient go on.
  REQUIRE(st->append_events({event("d11", model::EventKind::read, k_t0 + 2)}).ok());
  auto events = st->events_of_message("m1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 1);
  CHECK(store::verify_chain(events.value()));
  CHECK(st->get_delivery("d10")->read_at() == 0);

  store::NewReply reply;
  reply.reply.set_id("r1");
  reply.reply.set_delivery("d11");
  reply.reply.set_text("Réponse \xff");
  reply.events.push_back(event("d11", model::EventKind::reply, k_t0 + 3));
  CHECK(st->create_reply(reply).error().code == invalid);
  CHECK(st->get_reply("r1").error().code == store::Errc::not_found);
  CHECK(st->events_of_message("m1")->size() == 1); // its event neither

  store::pb::Consultation c;
  c.set_reference("2022AK_014");
  c.set_title("Titre \xc3");
  CHECK(st->put_consultation(c).error().code == invalid);

  store::pb::Credential cred;
  cred.set_version(1);
  cred.set_kind(2);
  cred.set_address("alice@buyer.example");
  cred.set_client_ip("\xff");
  CHECK(st->put_credential("session:x", cred, k_t0).error().code == invalid);
}

TEST_CASE("a store poisoned by an older pli is read, appended to, purged, checked and repaired",
          "[utf8]")
{
  TempDir dir;
  auto st = open_store(dir.path);
  REQUIRE(st->create_message(message("m1", {"bob@remote.example", "carol@other.example"})).ok());
  REQUIRE(st->create_message(message("m2", {"dan@remote.example"})).ok());
  auto first = st->append_events({event("d10", model::EventKind::sent, k_t0 + 1)});
  REQUIRE(first.ok());
  // A reply whose text and user agent are not UTF-8, as an older pli-linkd stored it.
  store::pb::Reply bad_reply;
  bad_reply.set_version(1);
  bad_reply.set_id("r1");
  bad_reply.set_delivery("d11");
  bad_reply.set_message("m1");
  bad_reply.set_text("Voici notre offre \xe9t\xe9");
  bad_reply.set_user_agent("Mozilla\xff\xfe");
  const store::pb::Event poisoned = poisoned_read(first->front());
  st.reset();
  put_raw(dir.path, "events", seq_key("m1", 2), poisoned.SerializeAsString());
  put_raw(dir.path, "replies", "r1", bad_reply.SerializeAsString());
  // And a truly corrupt event of another message.
  put_raw(dir.path, "events", seq_key("m2", 1), std::string("\xff\xff\xff garbage", 12));
  st = open_store(dir.path);

  // Read: the poisoned event comes back repaired, marked, with the chain verifying.
  auto events = st->events_of_message("m1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK(events->at(1).detail().at("user_agent") == "Mozilla\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(events->at(1).damaged_record() == poisoned.SerializeAsString());
  CHECK(store::verify_chain(events.value()));
  auto reply = st->get_reply("r1");
  REQUIRE(reply.ok());
  CHECK(reply->text() == "Voici notre offre \xef\xbf\xbdt\xef\xbf\xbd");
  CHECK_FALSE(reply->damaged_record().empty());

  // The other recipient's events are recorded, on the same chain.
  REQUIRE(st->append_events({event("d11", model::EventKind::read, k_t0 + 5000)}).ok());
  events = st->events_of_message("m1");
  REQUIRE(events->size() == 3);
  CHECK(store::verify_chain(events.value()));

  // The check finds both damaged records of m1 (repairable) and the corrupt one (not).
  auto report = st->check(store::CheckMode::report);
  REQUIRE(report.ok());
  REQUIRE(report->damaged.size() == 3);
  CHECK(report->damaged[0].database == "events");
  CHECK(report->damaged[0].key == "m1/2");
  CHECK(report->damaged[0].repairable);
  CHECK(report->damaged[1].key == "m2/1");
  CHECK_FALSE(report->damaged[1].repairable);
  CHECK(report->damaged[2].database == "replies");
  CHECK(report->damaged[2].repairable);
  CHECK_FALSE(report->damaged[0].repaired);

  auto repaired = st->check(store::CheckMode::repair);
  REQUIRE(repaired.ok());
  CHECK(repaired->damaged[0].repaired);
  CHECK(repaired->damaged[2].repaired);
  CHECK_FALSE(repaired->damaged[1].repaired);
  CHECK(repaired->chains.at("m1"));

  auto again = st->check(store::CheckMode::report);
  REQUIRE(again.ok());
  REQUIRE(again->damaged.size() == 1); // only the corrupt one is left
  CHECK(again->repaired_earlier == 2);
  events = st->events_of_message("m1");
  REQUIRE(events.ok());
  CHECK(store::verify_chain(events.value()));
  CHECK(events->at(1).damaged_record() == poisoned.SerializeAsString()); // the original kept

  // Purge goes through the corrupt record and removes everything.
  auto purged = st->purge(k_t0 + 1000000LL * 86400, store::PurgeMode::apply);
  REQUIRE(purged.ok());
  CHECK(purged->messages.size() == 2);
  CHECK(purged->events == 4);
  CHECK(st->check(store::CheckMode::report)->damaged.empty());
}

TEST_CASE("a PostgreSQL store holding records of an older pli is read, appended to, checked, "
          "repaired but for its append-only events, and purged",
          "[utf8][pg]")
{
  test::PgDatabase db;
  auto st = db.open();
  REQUIRE(st->create_message(message("m1", {"bob@remote.example", "carol@other.example"})).ok());
  REQUIRE(st->create_message(message("m2", {"dan@remote.example"})).ok());
  auto first = st->append_events({event("d10", model::EventKind::sent, k_t0 + 1)});
  REQUIRE(first.ok());
  store::pb::Reply bad_reply;
  bad_reply.set_version(1);
  bad_reply.set_id("r1");
  bad_reply.set_delivery("d11");
  bad_reply.set_message("m1");
  bad_reply.set_text("Voici notre offre \xe9t\xe9");
  const store::pb::Event poisoned = poisoned_read(first->front());
  // Copied in as they were (an older store moved over): the owner may INSERT.
  auto bytea = [](const std::string& b) { return "'\\x" + util::hex_encode(b) + "'::bytea"; };
  const std::string sql =
      "INSERT INTO events (message, seq, record) VALUES ('m1', 2, " +
      bytea(poisoned.SerializeAsString()) + "), ('m2', 1, " + bytea("\xff\xff\xff garbage") +
      "); UPDATE chain_heads SET seq = 2, hash = '" + poisoned.hash() +
      "' WHERE message = 'm1'; UPDATE chain_heads SET seq = 1 WHERE message = 'm2'; "
      "INSERT INTO replies (id, delivery, message, blobs, record) VALUES ('r1', 'd11', 'm1', "
      "'{}', " +
      bytea(bad_reply.SerializeAsString()) + ")";
  REQUIRE(test::PgCluster::try_sql(sql, db.options).empty());

  auto events = st->events_of_message("m1");
  REQUIRE(events.ok());
  REQUIRE(events->size() == 2);
  CHECK(events->at(1).damaged_record() == poisoned.SerializeAsString());
  CHECK(store::verify_chain(events.value()));
  CHECK(st->get_reply("r1")->text() == "Voici notre offre \xef\xbf\xbdt\xef\xbf\xbd");
  REQUIRE(st->append_events({event("d11", model::EventKind::read, k_t0 + 5000)}).ok());
  CHECK(store::verify_chain(st->events_of_message("m1").value()));

  auto report = st->check(store::CheckMode::report);
  REQUIRE(report.ok());
  REQUIRE(report->damaged.size() == 3);
  CHECK(report->damaged[0].key == "m1/2");
  CHECK_FALSE(report->damaged[0].repairable); // events are append-only here
  CHECK(report->damaged[1].key == "m2/1");
  CHECK_FALSE(report->damaged[1].repairable);
  CHECK(report->damaged[2].database == "replies");
  CHECK(report->damaged[2].repairable);
  auto repaired = st->check(store::CheckMode::repair);
  REQUIRE(repaired.ok());
  CHECK_FALSE(repaired->damaged[0].repaired);
  CHECK(repaired->damaged[2].repaired);
  CHECK(repaired->chains.at("m1"));
  auto again = st->check(store::CheckMode::report);
  REQUIRE(again.ok());
  CHECK(again->damaged.size() == 2); // the events stay as they were written
  CHECK(again->repaired_earlier == 1);

  auto purged = st->purge(k_t0 + 1000000LL * 86400, store::PurgeMode::apply);
  REQUIRE(purged.ok());
  CHECK(purged->messages.size() == 2);
  CHECK(purged->events == 4);
  CHECK(st->check(store::CheckMode::report)->damaged.empty());
}
