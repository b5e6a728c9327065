// Delivery reports received from outside: their events never change a status, their text
// reaches the buyer quoted and inert, the milter tells Postfix's own reports from SMTP
// clients' at connect; display names in the From of pli's mails are written by GMime.
#include "core/config/config.hpp"
#include "core/dsn/dsn.hpp"
#include "core/milter/engine.hpp"
#include "core/mime/compose.hpp"
#include "core/mime/parse.hpp"
#include "core/model/model.hpp"
#include "core/notify/notify.hpp"
#include "core/store/store.hpp"
#include "core/util/encoding.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <gmime/gmime.h>

#include <string>
#include <vector>

using namespace pli;
using model::EventKind;
using model::Status;

namespace {

// The display names and addresses of an address header's value, parsed by GMime.
std::vector<std::pair<std::string, std::string>> parse_mailboxes(const std::string& value)
{
  mime::init();
  std::vector<std::pair<std::string, std::string>> out;
  InternetAddressList* list = internet_address_list_parse(nullptr, value.c_str());
  if (list == nullptr) {
    return out;
  }
  for (int i = 0; i < internet_address_list_length(list); ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    const char* name = internet_address_get_name(ia);
    std::string addr;
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    }
    out.emplace_back(name == nullptr ? "" : name, addr);
  }
  g_object_unref(list);
  return out;
}

std::string header_line(const std::string& mail, const std::string& name)
{
  const std::string m = "\r\n" + mail;
  auto at = m.find("\r\n" + name + ": ");
  REQUIRE(at != std::string::npos);
  at += name.size() + 4;
  std::string v = m.substr(at, m.find("\r\n", at) - at);
  return v;
}

} // namespace

TEST_CASE("reports from outside never change a status", "[dsn_trust]")
{
  const std::vector<Status> all = model::all_statuses();
  for (EventKind k :
       {EventKind::remote_failed, EventKind::remote_delivered, EventKind::remote_delayed}) {
    CHECK(model::is_remote_claim(k));
    for (Status s : all) {
      CHECK(model::apply_event(s, k) == s);
    }
    CHECK(model::parse_event_kind(model::code(k)) == k);
  }
  CHECK_FALSE(model::is_remote_claim(EventKind::failed));
  CHECK(model::label(EventKind::remote_failed) ==
        "Échec signalé par un serveur distant (non vérifié)");
  CHECK(model::label(EventKind::remote_failed, model::Locale::en) ==
        "Failure reported by a remote server (unverified)");
  CHECK(model::code(EventKind::remote_delivered) == "remote_delivered");
}

TEST_CASE("report text quoted in the buyer's mail is one line, capped and inert", "[dsn_trust]")
{
  struct Row
  {
    std::string in;
    std::size_t max;
    std::string out;
  };
  const std::vector<Row> rows{
      {"550 5.1.1 <bob@remote.example>: user unknown", 300,
       "550 5.1.1 <bob@remote[.]example>: user unknown"},
      {"Re-send at https://phish.example/login", 300, "Re-send at https[:]//phish[.]example/login"},
      {"see www.evil.example now", 300, "see www[.]evil[.]example now"},
      {"two\r\nlines\tand\x1b[31m", 300, "two  lines and [31m"},
      {"4.2.1", 300, "4.2.1"},
      {std::string(400, 'a'), 10, std::string(10, 'a') + "…"},
      {"ééééé", 5, "éé…"}, // cut at a character boundary
      {"bad \xff\xfe bytes", 300, "bad \xC3\xBF\xC3\xBE bytes"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    CHECK(notify::inert_text(r.in, r.max) == r.out);
  }
}

TEST_CASE("display names of pli's mails survive commas, quotes and accents", "[dsn_trust]")
{
  for (const std::string name : {"Ville de Paris, Direction des achats", "Région \"Est\", achats",
                                 "Plain name", "Région Exemple (pli)", "a\\b <c>"}) {
    CAPTURE(name);
    const std::string v = mime::mailbox(name, "pli-bounce@buyer.example");
    auto parsed = parse_mailboxes(v);
    REQUIRE(parsed.size() == 1);
    CHECK(parsed[0].first == name);
    CHECK(parsed[0].second == "pli-bounce@buyer.example");
  }
  CHECK(mime::mailbox("", "x@y.example") == "<x@y.example>");
}

TEST_CASE("the not-delivered notification: one From address, the report quoted inertly",
          "[dsn_trust][notify]")
{
  test::TempDir dir;
  auto opened = store::open_lmdb({(dir.path / "store").string(), 64, false});
  REQUIRE(opened.ok());
  auto& st = *opened.value();
  store::NewMessage nm;
  nm.message.set_id("m1");
  nm.message.set_subject("Avis");
  nm.message.set_type(static_cast<std::uint32_t>(model::MessageType::libre));
  nm.message.set_mode(1);
  nm.message.set_sender("alice@buyer.example");
  nm.message.set_sent_at(1656685605LL * 1000000LL);
  store::pb::Delivery d;
  d.set_id("d1");
  d.set_message("m1");
  d.set_recipient("bob@remote.example");
  d.set_idempotency_key("k1");
  nm.message.add_delivery_ids("d1");
  nm.deliveries.push_back(d);
  REQUIRE(st.create_message(std::move(nm)).ok());
  const util::Micros t = 1656685605LL * 1000000LL;
  REQUIRE(
      st.append_events({{"d1", EventKind::sent, t, {}, {}},
                        {"d1",
                         EventKind::failed,
                         t + 1,
                         {{"status", "5.1.1"},
                          {"remote_mta", "mx.remote.example"},
                          {"diagnostic", "550 5.1.1 unknown, log in at https://phish.example/x " +
                                             std::string(1000, 'z')}},
                         {}}})
          .ok());
  auto cfg = config::load_from_string(
      fmt::format("organisation: {{ name: \"Ville de Paris, Direction des achats\" }}\n"
                  "store: {{ path: {} }}\nmilter: {{ socket: \"unix:/x\" }}\n"
                  "policy: {{ buyers: [\"*@buyer.example\"] }}\n"
                  "bounce: {{ address: \"pli-bounce@buyer.example\" }}\n"
                  "linkd: {{ public_url: \"https://pli.example\" }}\n",
                  (dir.path / "store").string()),
      "t.yaml");
  REQUIRE(cfg.ok());
  auto mail = notify::compose(cfg.value(), st, "d1", EventKind::failed, t + 2);
  REQUIRE(mail);
  auto from = parse_mailboxes(header_line(mail->data, "From"));
  REQUIRE(from.size() == 1);
  CHECK(from[0].first == "Ville de Paris, Direction des achats (pli)");
  CHECK(from[0].second == "pli-bounce@buyer.example");
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
  CAPTURE(*text);
  CHECK(text->find("> Diagnostic : 550 5.1.1 unknown, log in at https[:]//phish[.]example/x zz") !=
        std::string::npos);
  CHECK(text->find("> Serveur distant : mx[.]remote[.]example") != std::string::npos);
  CHECK(text->find("https://phish") == std::string::npos);
  CHECK(text->find(std::string(400, 'z')) == std::string::npos); // capped
}

TEST_CASE("the milter tells Postfix's own reports from SMTP clients at connect", "[dsn_trust]")
{
  struct Row
  {
    std::string host;
    std::string ip;
    int port;
    bool local;
  };
  const std::vector<Row> rows{
      {"localhost", "127.0.0.1", 0, true},      // cleanup(8): bounce(8)'s reports
      {"localhost", "127.0.0.1", 45123, false}, // an SMTP client on loopback
      {"unknown", "127.0.0.1", 45123, false},   // smtpd without peer name lookup
      {"localhost", "192.0.2.1", 0, false},     // XCLIENT-like claims elsewhere
      {"mx.remote.example", "127.0.0.1", 0, false},
      {"localhost", "", -1, false}, // no address at all
  };
  test::TempDir dir;
  auto cfg = config::load_from_string(
      fmt::format("organisation: {{ name: \"X\" }}\nstore: {{ path: {} }}\n"
                  "milter: {{ socket: \"unix:/x\" }}\npolicy: {{ buyers: [\"*@buyer.example\"] "
                  "}}\nbounce: {{ address: \"pli-bounce@buyer.example\" }}\n"
                  "linkd: {{ public_url: \"https://pli.example\" }}\n",
                  (dir.path / "store").string()),
      "t.yaml");
  REQUIRE(cfg.ok());
  CHECK(cfg->bounce.max_report_kb == 1024);
  auto opened = store::open_lmdb({(dir.path / "store").string(), 64, false});
  REQUIRE(opened.ok());
  milter::Engine engine(cfg.value(), *opened.value());
  for (const auto& r : rows) {
    CAPTURE(r.host, r.ip, r.port);
    milter::Transaction t;
    engine.connect(t, r.host, r.ip, r.port);
    CHECK(t.local_origin == r.local);
    // A report address from outside for a delivery never issued: refused at RCPT.
    if (!r.local) {
      CHECK(engine.envrcpt(t, "<pli-bounce+dnosuch@buyer.example>") ==
            milter::Step::reject_recipient);
    } else {
      CHECK(engine.envrcpt(t, "pli-bounce+dnosuch@buyer.example") == milter::Step::proceed);
    }
  }
}

TEST_CASE("bounce.max_report_kb is validated", "[dsn_trust][config]")
{
  auto cfg = config::load_from_string(
      "organisation: { name: \"X\" }\nstore: { path: /tmp/x }\nmilter: { socket: \"unix:/x\" }\n"
      "policy: { buyers: [\"*@b.example\"] }\nlinkd: { public_url: \"https://p.example\" }\n"
      "bounce: { address: \"pli-bounce@b.example\",\n  max_report_kb: 0 }\n",
      "t.yaml");
  REQUIRE_FALSE(cfg.ok());
  CHECK(cfg.error().message.find("t.yaml:7") != std::string::npos);
  CHECK(cfg.error().message.find("bounce.max_report_kb") != std::string::npos);
}

TEST_CASE("a report is parsed with a bounded number of parts", "[dsn_trust][dsn]")
{
  auto report = [](int filler) {
    std::string m = "From: MAILER-DAEMON@mx.example\nSubject: report\nMIME-Version: 1.0\n"
                    "Content-Type: multipart/report; report-type=delivery-status; "
                    "boundary=\"b\"\n\n";
    for (int i = 0; i < filler; ++i) {
      m += "--b\nContent-Type: application/octet-stream\n\nx\n";
    }
    m += "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
         "Final-Recipient: rfc822; bob@remote.example\nAction: failed\nStatus: 5.1.1\n\n--b--\n";
    return m;
  };
  auto few = dsn::parse_report(report(10));
  REQUIRE(few);
  REQUIRE(few->recipients.size() == 1);
  CHECK(few->recipients[0].status == "5.1.1");
  // Past the 256th part nothing more is looked at.
  auto many = dsn::parse_report(report(300));
  CHECK((!many || many->recipients.empty() || many->inferred));
}
