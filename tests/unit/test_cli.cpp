// The CLI's core parts: listing paths (index-only counts, merged statuses, ranges),
// for_each, purge (what goes, which blobs stay), CSV export, notifications' mails,
// and the keys/notify config sections.
#include "core/cli/export.hpp"
#include "core/cli/printer.hpp"
#include "core/config/config.hpp"
#include "core/notify/notify.hpp"
#include "core/receipt/keys.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include "tests/unit/store_backends.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <sstream>

#include <unistd.h>

#include <filesystem>

namespace fs = std::filesystem;
using namespace pli;
using model::EventKind;
using model::Status;

namespace {

using pli::test::TempDir;

constexpr util::Micros k_day = 86400LL * 1000000LL;
constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

std::unique_ptr<store::Store> open(const fs::path& p)
{
  auto s = store::open_lmdb({p.string(), 64, false});
  REQUIRE(s.ok());
  return std::move(s.value());
}

// Message `n` with `rcpts` deliveries, sent at day n, with an attachment `attachment`.
store::NewMessage make(int n, int rcpts, const std::string& attachment)
{
  store::NewMessage nm;
  auto& m = nm.message;
  m.set_id("m" + std::to_string(n));
  m.set_message_id("msg" + std::to_string(n) + "@buyer.example");
  m.set_subject("Réponse n°" + std::to_string(n));
  m.set_type(static_cast<std::uint32_t>(n % 2 == 0 ? model::MessageType::rejet
                                                   : model::MessageType::libre));
  m.set_mode(1);
  m.set_sender("alice@buyer.example");
  m.set_sent_at(k_t0 + n * k_day);
  m.set_text_body("Le corps du courrier, œuvre " + std::to_string(n));
  std::string original = "original " + std::to_string(n);
  m.set_original_sha256(util::sha256_hex(original));
  nm.blobs[m.original_sha256()] = original;
  auto* a = m.add_attachments();
  a->set_name("pièce.pdf");
  a->set_sha256(util::sha256_hex(attachment));
  a->set_size(attachment.size());
  nm.blobs[a->sha256()] = attachment;
  for (int i = 0; i < rcpts; ++i) {
    store::pb::Delivery d;
    d.set_id("d" + std::to_string(n) + "x" + std::to_string(i));
    d.set_recipient("r" + std::to_string(i) + "@remote.example");
    d.set_token_hash(util::sha256_hex("tok" + d.id()));
    d.set_idempotency_key("key" + d.id());
    m.add_delivery_ids(d.id());
    nm.deliveries.push_back(d);
  }
  return nm;
}

std::vector<std::string> ids(const store::ListResult& r)
{
  std::vector<std::string> out;
  for (const auto& it : r.items) {
    out.push_back(it.delivery.id());
  }
  return out;
}

} // namespace

TEST_CASE("list: merged statuses, index-only counts and ranges agree with the records",
          "[cli][store]")
{
  TempDir dir;
  auto st = open(dir.path);
  for (int n = 0; n < 12; ++n) {
    REQUIRE(st->create_message(make(n, 2, "shared")).ok());
  }
  // d<n>x0 delivered for even n, failed for n % 3 == 1; d<n>x1 read for n < 4.
  for (int n = 0; n < 12; ++n) {
    const std::string d0 = "d" + std::to_string(n) + "x0";
    if (n % 2 == 0) {
      REQUIRE(st->append_events({{d0, EventKind::delivered, k_t0, {}, {}}}).ok());
    } else if (n % 3 == 1) {
      REQUIRE(st->append_events({{d0, EventKind::failed, k_t0, {}, {}}}).ok());
    }
    if (n < 4) {
      REQUIRE(st->append_events({{"d" + std::to_string(n) + "x1", EventKind::read, k_t0, {}, {}}})
                  .ok());
    }
  }
  store::Query all;
  CHECK(st->list(all)->total == 24);
  all.page = 3;
  all.per_page = 10;
  CHECK(ids(st->list(all).value()) == std::vector<std::string>{"d1x0", "d1x1", "d0x0", "d0x1"});

  store::Query two;
  two.statuses = {Status::delivered, Status::read};
  two.per_page = 4;
  auto r = st->list(two).value();
  CHECK(r.total == 10); // 6 delivered + 4 read
  CHECK(ids(r) == std::vector<std::string>{"d10x0", "d8x0", "d6x0", "d4x0"});
  two.page = 2; // same send time: by delivery id
  CHECK(ids(st->list(two).value()) == std::vector<std::string>{"d3x1", "d2x0", "d2x1", "d1x1"});
  two.page = 3;
  CHECK(ids(st->list(two).value()) == std::vector<std::string>{"d0x0", "d0x1"});

  store::Query range;
  range.since = k_t0 + 3 * k_day;
  range.until = k_t0 + 5 * k_day; // days 3 and 4
  CHECK(st->list(range)->total == 4);
  range.statuses = {Status::delivered};
  CHECK(ids(st->list(range).value()) == std::vector<std::string>{"d4x0"});
  range.statuses.clear();
  range.type = model::MessageType::rejet;
  CHECK(st->list(range)->total == 2);

  store::Query words;
  words.keywords = "oeuvre 11";
  CHECK(ids(st->list(words).value()) == std::vector<std::string>{"d11x0", "d11x1"});

  std::vector<std::string> seen;
  store::Query fe;
  fe.statuses = {Status::not_delivered};
  auto n = st->for_each(fe, [&](const store::ListItem& it) {
    seen.push_back(it.delivery.id());
    CHECK(it.message.id() == it.delivery.message());
    return true;
  });
  REQUIRE(n.ok());
  CHECK(seen == std::vector<std::string>{"d7x0", "d1x0"});
}

TEST_CASE("purge removes old exchanges entirely and keeps blobs still in use", "[cli][store]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  REQUIRE(st->create_message(make(1, 2, "only in m1")).ok());
  REQUIRE(st->create_message(make(2, 1, "shared")).ok());
  REQUIRE(st->create_message(make(30, 1, "shared")).ok());
  REQUIRE(st->append_events(
                {{"d1x0", EventKind::sent, k_t0, {}, {}}, {"d1x0", EventKind::read, k_t0, {}, {}}})
              .ok());
  REQUIRE(st->add_token("d2x0", util::sha256_hex("second token"), 0).ok());
  const util::Micros before = k_t0 + 10 * k_day;

  auto dry = st->purge(before, store::PurgeMode::dry_run);
  REQUIRE(dry.ok());
  CHECK(dry->messages == std::vector<std::string>{"m1", "m2"});
  CHECK(dry->deliveries == 3);
  CHECK(dry->events == 2);
  CHECK(dry->tokens == 4);
  CHECK(dry->blobs_deleted == 3);    // two originals and "only in m1"
  CHECK(dry->blobs_kept == 1);       // "shared", still used by m30
  CHECK(st->get_message("m1").ok()); // a dry run changes nothing
  CHECK(st->list({})->total == 4);

  auto done = st->purge(before, store::PurgeMode::apply);
  REQUIRE(done.ok());
  CHECK(done->messages == dry->messages);
  CHECK_FALSE(st->get_message("m1").ok());
  CHECK_FALSE(st->get_delivery("d1x1").ok());
  CHECK(st->events_of_message("m1")->empty());
  CHECK_FALSE(st->get_token(util::sha256_hex("tokd1x0")).ok());
  CHECK_FALSE(st->get_token(util::sha256_hex("second token")).ok());
  CHECK_FALSE(st->find_by_message_id("msg1@buyer.example").ok());
  CHECK_FALSE(st->find_by_idempotency_key("keyd1x0").ok());
  CHECK_FALSE(st->get_blob(util::sha256_hex("only in m1")).ok());
  CHECK_FALSE(st->get_blob(util::sha256_hex("original 1")).ok());
  CHECK(st->get_blob(util::sha256_hex("shared")).ok());
  CHECK(st->get_blob(util::sha256_hex("original 30")).ok());
  // Indexes hold only what remains.
  CHECK(st->list({})->total == 1);
  store::Query read;
  read.statuses = {Status::read};
  CHECK(st->list(read)->total == 0);
  store::Query words;
  words.keywords = "reponse";
  CHECK(st->list(words)->total == 1);
  store::Query type;
  type.type = model::MessageType::rejet;
  CHECK(st->list(type)->total == 1);
  // Nothing left to purge.
  CHECK(st->purge(before, store::PurgeMode::apply)->messages.empty());
}

TEST_CASE("CSV export: quoted fields, CRLF, ISO times", "[cli]")
{
  CHECK(cli::csv_field("plain") == "plain");
  CHECK(cli::csv_field("a,b") == "\"a,b\"");
  CHECK(cli::csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(cli::csv_field("two\nlines") == "\"two\nlines\"");
  // Formulas a spreadsheet would run (CSV injection) start with a quote.
  CHECK(cli::csv_field("=HYPERLINK(\"http://evil\")") == "\"'=HYPERLINK(\"\"http://evil\"\")\"");
  CHECK(cli::csv_field("+33 1 23") == "'+33 1 23");
  CHECK(cli::csv_field("-2+3") == "'-2+3");
  CHECK(cli::csv_field("@SUM(A1)") == "'@SUM(A1)");
  CHECK(cli::csv_field("\tcmd") == "'\tcmd");
  CHECK(cli::csv_field("\rcmd") == "\"'\rcmd\"");
  CHECK(cli::csv_field("a=b") == "a=b");
  CHECK(cli::k_utf8_bom == "\xEF\xBB\xBF");
  auto nm = make(4, 1, "x");
  store::ListItem item{nm.deliveries[0], nm.message};
  item.delivery.set_status(static_cast<std::uint32_t>(Status::read));
  item.delivery.set_read_at(k_t0);
  const std::string row = cli::csv_row(item, "Europe/Paris");
  CHECK(row.find("d4x0,m4,msg4@buyer.example,2022-07-05T16:26:45+02:00,alice@buyer.example,") == 0);
  CHECK(row.find(",read,,2022-07-01T16:26:45+02:00,") != std::string::npos);
  CHECK(row.find("Réponse n°4") != std::string::npos);
  CHECK(row.substr(row.size() - 2) == "\r\n");
  CHECK(cli::csv_header().rfind("delivery_id,", 0) == 0);
  item.message.set_subject("=cmd|' /C calc'!A0");
  CHECK(cli::csv_row(item, "Europe/Paris").find(",'=cmd|' /C calc'!A0,") != std::string::npos);
}

TEST_CASE("text output: escape sequences and controls from outside never reach the terminal",
          "[cli]")
{
  CHECK(cli::terminal_safe("Objet \x1b]0;pwned\x07 suite") == "Objet  suite");
  CHECK(cli::terminal_safe("a\x1b[2Jb\x1b[31mc") == "abc");
  CHECK(cli::terminal_safe("osc \x1b]8;;http://x\x1b\\lien") == "osc lien");
  CHECK(cli::terminal_safe("c1 \xc2\x9b"
                           "2J") == "c1 ?2J");
  CHECK(cli::terminal_safe("raw \x9b"
                           "2J \xff") == "raw ?2J ?");
  CHECK(cli::terminal_safe("bell\x07 del\x7f tab\t") == "bell  del  tab ");
  CHECK(cli::terminal_safe("deux\nlignes") == "deux lignes");
  CHECK(cli::terminal_safe("deux\nlignes", true) == "deux\nlignes");
  CHECK(cli::terminal_safe("Réponse — « n°4 » € 𝄞") == "Réponse — « n°4 » € 𝄞");
  CHECK(cli::terminal_safe("unterminated \x1b]0;title") == "unterminated ");

  std::ostringstream out;
  auto p = cli::make_printer(cli::Format::text, out);
  const std::string evil = "Offre \x1b]0;pwned\x07\x1b[2J retenue";
  p->heading(evil);
  p->field("Objet", evil);
  p->table({"Objet"}, {{evil}});
  p->line(evil);
  CHECK(out.str().find('\x1b') == std::string::npos);
  CHECK(out.str().find('\x07') == std::string::npos);
  CHECK(out.str().find("Offre  retenue") != std::string::npos);
}

TEST_CASE("notifications: what the buyer receives, in French or English", "[cli][notify]")
{
  TempDir dir;
  auto st = open(dir.path / "store");
  REQUIRE(st->create_message(make(2, 1, "att")).ok());
  REQUIRE(st->append_events({{"d2x0", EventKind::sent, k_t0, {}, {}},
                             {"d2x0", EventKind::read, k_t0 + 1000000, {{"ip", "192.0.2.9"}}, {}}})
              .ok());
  auto cfg = config::load_from_string(
      fmt::format("organisation: {{ name: \"Région Exemple\" }}\nstore: {{ path: {} }}\n"
                  "milter: {{ socket: \"unix:/x\" }}\npolicy: {{ buyers: [\"*@buyer.example\"] "
                  "}}\nbounce: {{ address: \"pli-bounce@buyer.example\" }}\n"
                  "linkd: {{ public_url: \"https://pli.example\" }}\nkeys: {{ dir: {} }}\n"
                  "notify: {{ read: true, not_delivered: false }}\n",
                  (dir.path / "store").string(), (dir.path / "keys").string()),
      "t.yaml");
  REQUIRE(cfg.ok());
  CHECK(cfg->keys.dir == (dir.path / "keys").string());
  CHECK(cfg->notify.read);
  CHECK_FALSE(cfg->notify.not_delivered);

  SECTION("without a key: the read notice says where to get the receipt")
  {
    auto mail = notify::compose(cfg.value(), *st, "d2x0", EventKind::read, k_t0);
    REQUIRE(mail);
    CHECK(mail->to == "alice@buyer.example");
    CHECK_FALSE(mail->receipt_attached);
    CHECK(mail->data.find("Auto-Submitted: auto-generated") != std::string::npos);
  }
  SECTION("with a key: the receipt is attached and verifies")
  {
    REQUIRE(receipt::generate_keys(cfg->keys.dir, receipt::Overwrite::refuse).ok());
    auto mail = notify::compose(cfg.value(), *st, "d2x0", EventKind::read, k_t0);
    REQUIRE(mail);
    CHECK(mail->receipt_attached);
    CHECK(mail->data.find("Content-Type: application/pdf") != std::string::npos);
    CHECK(mail->data.find("accuse-de-reception-d2x0.pdf") != std::string::npos);
    // The French text part, decoded.
    auto start = mail->data.find("Content-Transfer-Encoding: base64\r\n\r\n") + 37;
    auto end = mail->data.find("--=_pli_n_", start);
    std::string b64;
    for (char c : mail->data.substr(start, end - start)) {
      if (c != '\r' && c != '\n') {
        b64.push_back(c);
      }
    }
    auto text = util::base64_decode(b64);
    REQUIRE(text);
    CHECK(text->find("a été lu par son destinataire le 01/07/2022 - 16:26:46") !=
          std::string::npos);
    CHECK(text->find("r0@remote.example") != std::string::npos);
    CHECK(text->find("adresse IP 192.0.2.9") != std::string::npos);
    CHECK(text->find("L'accusé de réception signé est joint") != std::string::npos);
  }
  SECTION("switched off, not first, or not a failure that changed the status: nothing is sent")
  {
    auto before = st->get_delivery("d2x0").value();
    auto r = notify::notify_event(cfg.value(), *st, before, EventKind::failed);
    CHECK(r.outcome == notify::Outcome::disabled);
    r = notify::notify_event(cfg.value(), *st, before, EventKind::read); // read_at already set
    CHECK(r.outcome == notify::Outcome::not_first);
  }
}

TEST_CASE("list totals from the per-day counts equal a full scan, across ranges and purges",
          "[cli][store]")
{
  TempDir dir;
  auto st = open(dir.path);
  // 60 messages, one every 7 hours, so that ranges cut days in the middle.
  for (int n = 0; n < 60; ++n) {
    auto nm = make(n, 1 + n % 3, "att" + std::to_string(n));
    nm.message.set_sent_at(k_t0 + n * 7 * 3600LL * 1000000LL);
    if (n % 4 == 0) {
      nm.message.set_consultation("REF" + std::to_string(n % 8));
    }
    REQUIRE(st->create_message(nm).ok());
    if (n % 5 == 0) {
      REQUIRE(st->append_events({{nm.deliveries[0].id(), EventKind::read, k_t0, {}, {}}}).ok());
    }
  }
  auto scan_count = [&](const store::Query& q) {
    std::size_t n = 0;
    REQUIRE(st->for_each(q, [&](const store::ListItem&) { return ++n, true; }).ok());
    return n;
  };
  std::vector<store::Query> queries;
  for (int a = -1; a < 20; a += 3) {
    for (int b = a + 1; b < 22; b += 5) {
      store::Query q;
      if (a >= 0) {
        q.since = k_t0 + a * 11 * 3600LL * 1000000LL + 12345;
      }
      q.until = k_t0 + b * 11 * 3600LL * 1000000LL + 777;
      queries.push_back(q);
      q.statuses = {Status::read};
      queries.push_back(q);
      q.statuses = {Status::read, Status::sending};
      queries.push_back(q);
      q.statuses.clear();
      q.type = model::MessageType::rejet;
      queries.push_back(q);
      q.type.reset();
      q.consultation = "REF0";
      queries.push_back(q);
    }
  }
  queries.emplace_back();
  for (const auto& q : queries) {
    CHECK(st->list(q)->total == scan_count(q));
  }
  REQUIRE(st->purge(k_t0 + 5 * k_day, store::PurgeMode::apply).ok());
  for (const auto& q : queries) {
    CHECK(st->list(q)->total == scan_count(q));
  }
}
