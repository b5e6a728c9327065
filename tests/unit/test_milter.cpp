// The milter's decisions without libmilter: options from the mail client, policy
// (who is a buyer, which recipients are internal), and DSN intake through a recording
// MTA session and a real store.
#include "core/config/config.hpp"
#include "core/milter/engine.hpp"
#include "core/milter/options.hpp"
#include "core/util/crypto.hpp"
#include "core/util/text.hpp"

#include "tests/unit/milter_fixture.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace pli;
using milter::Engine;
using milter::Step;
using test::feed;
using test::make_config;
using test::Recording;
using test::TempStore;

TEST_CASE("subject tags and X-Pli-Options", "[milter][options]")
{
  struct Row
  {
    std::string subject;
    std::string header;
    std::string cleaned;
    std::optional<model::Mode> mode;
    std::optional<bool> reply;
    std::optional<std::string> ref;
    std::optional<model::MessageType> type;
    std::size_t warnings;
  };
  using M = model::Mode;
  using T = model::MessageType;
  const std::vector<Row> rows = {
      {"Résultat", "", "Résultat", {}, {}, {}, {}, 0},
      {"[AR] Résultat", "", "Résultat", M::ar, {}, {}, {}, 0},
      {"[simple] Résultat [Réponse]", "", "Résultat", M::simple, true, {}, {}, 0},
      {"Résultat [REPONSE] [REF:2022AK_014]", "", "Résultat", {}, true, "2022AK_014", {}, 0},
      {"[type:Rejet] Résultat", "", "Résultat", {}, {}, {}, T::rejet, 0},
      {"[TYPE:réponse-question] Q", "", "Q", {}, {}, {}, T::reponse_question, 0},
      {"[Urgent] [AR] Résultat", "", "[Urgent] Résultat", M::ar, {}, {}, {}, 0},
      {"[TYPE:inconnu] Résultat", "", "Résultat", {}, {}, {}, {}, 1},
      {"[REF:bad ref!] Résultat", "", "Résultat", {}, {}, {}, {}, 1},
      {"[AR] Résultat", "mode=simple; reply=yes; ref=2023X_1; type=attribution", "Résultat",
       M::simple, true, "2023X_1", T::attribution, 0},
      {"Résultat", "mode=weird; colour=blue", "Résultat", {}, {}, {}, {}, 2},
      {"[ar]", "", "", M::ar, {}, {}, {}, 0},
      {"Prix [en €] [AR]", "", "Prix [en €]", M::ar, {}, {}, {}, 0},
  };
  for (const auto& row : rows) {
    INFO(row.subject << " | " << row.header);
    auto o = milter::parse_client_options(row.subject, row.header);
    CHECK(o.subject == row.cleaned);
    CHECK(o.mode == row.mode);
    CHECK(o.reply == row.reply);
    CHECK(o.reference == row.ref);
    CHECK(o.type == row.type);
    CHECK(o.warnings.size() == row.warnings);
  }
}

TEST_CASE("a tag with a NUL byte and invalid UTF-8 is kept, without a crash", "[milter][options]")
{
  // Found by the subject_tags fuzz target: the fold (then store::fold) recursed without end on a
  // NUL byte in text that is not valid UTF-8 (the milter's thread died of a stack overflow).
  const std::string subject("Re: [E\0XT] [REF:2022AK_014] Objet \x84\x84", 36);
  const auto o = milter::parse_client_options(subject, "");
  CHECK(o.reference == "2022AK_014");
  CHECK(o.subject == std::string("Re: [E\0XT] Objet \x84\x84", 19));
  CHECK(util::fold(std::string("a\0\xff", 3)) == "a  ");
}

TEST_CASE("who is a buyer, which recipients are internal", "[milter]")
{
  auto config = make_config("", "  sender_logins: { JDupont: [\"achat-*@example.org\"] }\n");
  TempStore ts;
  Engine engine(config, *ts.store);
  Recording mta;

  struct Row
  {
    std::string client_ip;
    std::string auth;
    std::string sender;
    Step expected;
  };
  const std::vector<Row> rows = {
      {"203.0.113.9", "alice@marches.example.org", "<alice@marches.example.org>", Step::proceed},
      {"203.0.113.9", "Alice@Marches.example.org", "<alice@marches.example.org>", Step::proceed},
      {"203.0.113.9", "", "<alice@marches.example.org>", Step::accept}, // not authenticated
      // The login must own the sender: another login, even from a trusted network, is not
      // registered as that buyer.
      {"203.0.113.9", "bob@marches.example.org", "<alice@marches.example.org>", Step::accept},
      {"192.0.2.44", "bob@marches.example.org", "<alice@marches.example.org>", Step::accept},
      {"203.0.113.9", "alice", "<alice@marches.example.org>", Step::accept}, // not in the map
      {"203.0.113.9", "jdupont", "<alice@marches.example.org>", Step::accept},
      {"203.0.113.9", "jdupont", "<achat-x@example.org>", Step::proceed}, // in the map
      {"203.0.113.9", "jdupont", "<achat-y@example.org>", Step::proceed}, // its glob
      {"203.0.113.9", "JDUPONT", "<achat-y@example.org>", Step::proceed}, // logins fold case
      {"192.0.2.44", "", "<alice@marches.example.org>", Step::proceed},   // trusted network
      {"2001:db8::5", "", "<Alice@MARCHES.example.org>", Step::proceed},
      {"192.0.2.44", "", "<bob@example.org>", Step::accept}, // not a buyer
      {"192.0.2.44", "", "<achat-x@example.org>", Step::proceed},
      {"203.0.113.9", "", "<>", Step::proceed}, // maybe a DSN
      {"", "", "", Step::proceed},              // DSN path: bare ""
  };
  for (const auto& row : rows) {
    INFO(row.sender << " from " << row.client_ip);
    milter::Transaction t;
    t.client_ip = row.client_ip;
    mta.macros["{auth_authen}"] = row.auth;
    CHECK(engine.envfrom(t, row.sender, mta) == row.expected);
  }

  mta.macros.clear();
  milter::Transaction t;
  t.client_ip = "192.0.2.1";
  REQUIRE(engine.envfrom(t, "<alice@marches.example.org>", mta) == Step::proceed);
  engine.envrcpt(t, "<colleague@example.org>");
  engine.envrcpt(t, "<x@sub.example.org>");
  CHECK(t.recipients[0].kind == milter::Recipient::Kind::internal);
  CHECK(t.recipients[1].kind == milter::Recipient::Kind::internal);
  // Internal recipients only: headers are read for the tags, the body is not buffered.
  REQUIRE(engine.data(t) == Step::proceed);
  CHECK(t.headers_only);
  feed(engine, t, "Subject: [AR] [TYPE:rejet] Note\nX-Pli-Options: reply=yes\n\nbody text\n");
  CHECK(t.body.empty());
  auto v = engine.eom(t, mta);
  CHECK(v.outcome == milter::Outcome::accept_untouched);
  CHECK_FALSE(v.discard);
  REQUIRE(mta.changed.size() == 2);
  CHECK(mta.changed[0] == std::make_pair(std::string("Subject"), std::string("Note")));
  CHECK(mta.changed[1].first == "X-Pli-Options");
  CHECK(mta.changed[1].second.empty());

  milter::Transaction t2;
  t2.client_ip = "192.0.2.1";
  REQUIRE(engine.envfrom(t2, "<alice@marches.example.org>", mta) == Step::proceed);
  engine.envrcpt(t2, "<someone@notexample.org>"); // a look-alike domain is external
  CHECK(t2.recipients[0].kind == milter::Recipient::Kind::external);
  CHECK(engine.data(t2) == Step::proceed);
  CHECK_FALSE(t2.headers_only);

  // A non-buyer's null-sender mail that is not for the bounce address is accepted at DATA.
  milter::Transaction t3;
  REQUIRE(engine.envfrom(t3, "<>", mta) == Step::proceed);
  engine.envrcpt(t3, "<postmaster@example.org>");
  CHECK(engine.data(t3) == Step::accept);
}

TEST_CASE("local submissions (sendmail) are registered only when configured", "[milter]")
{
  for (const bool allowed : {false, true}) {
    auto config = make_config("", allowed ? "  register_local_submissions: true\n" : "");
    TempStore ts;
    Engine engine(config, *ts.store);
    Recording mta;
    INFO("register_local_submissions: " << allowed);
    // What Postfix's cleanup presents for sendmail/pickup mail: 127.0.0.1, port 0, no login,
    // whatever trusted_networks says.
    milter::Transaction t;
    t.client_ip = "192.0.2.1";
    t.local_origin = true;
    CHECK(engine.envfrom(t, "<alice@marches.example.org>", mta) ==
          (allowed ? Step::proceed : Step::accept));
    CHECK(t.buyer == allowed);
    // Postfix's own bounces come the same way, and are still read.
    milter::Transaction dsn;
    dsn.local_origin = true;
    CHECK(engine.envfrom(dsn, "", mta) == Step::proceed);
  }
}

TEST_CASE("the content hash ignores trace headers and sees everything the client wrote", "[milter]")
{
  auto config = make_config();
  TempStore ts;
  Engine engine(config, *ts.store);
  auto hash = [&](const std::string& raw) {
    milter::Transaction t;
    t.client_ip = "192.0.2.1";
    feed(engine, t, raw);
    return milter::content_hash(t);
  };
  const std::string mail = "From: <alice@marches.example.org>\nSubject: Lot 1\n"
                           "Message-ID: <m1@marches.example.org>\n\nBody\n";
  const std::string first = hash("Received: from x by mail (Postfix) id AAA111\n" + mail);
  // A retry: Postfix's Received (new queue id), Return-Path, another milter's results.
  CHECK(hash("Received: from x by mail (Postfix) id BBB222\nReturn-Path: <a@b>\n"
             "Authentication-Results: mail; dkim=none\nARC-Seal: i=1\n" +
             mail) == first);
  CHECK(hash(mail) == first);
  // Another mail under the same Message-ID.
  CHECK(hash("Received: from x by mail (Postfix) id AAA111\nFrom: <alice@marches.example.org>\n"
             "Subject: Lot 2\nMessage-ID: <m1@marches.example.org>\n\nBody\n") != first);
  CHECK(hash("Received: from x by mail (Postfix) id AAA111\n" + mail + "more\n") != first);
}

TEST_CASE("DSNs become events once, only for sent deliveries", "[milter][dsn]")
{
  auto config = make_config();
  TempStore ts;
  Engine engine(config, *ts.store);
  engine.unsent_wait = std::chrono::milliseconds(0);
  Recording mta;
  mta.macros["i"] = "ABC123";

  store::NewMessage nm;
  nm.message.set_id("mtest");
  nm.message.set_sent_at(1);
  for (const char* id : {"dsent", "dnever"}) {
    store::pb::Delivery d;
    d.set_id(id);
    d.set_recipient("bob@remote.example");
    nm.message.add_delivery_ids(id);
    nm.deliveries.push_back(d);
  }
  REQUIRE(ts.store->create_message(nm).ok());
  REQUIRE(ts.store->append_events({{"dsent", model::EventKind::sent, 2, {}, {}}}).ok());

  auto dsn = [](const std::string& action, const std::string& status) {
    return "From: MAILER-DAEMON@example.org\nSubject: report\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
           "--b\nContent-Type: text/plain\n\nreport\n\n--b\n"
           "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mail.example.org\n\n"
           "Final-Recipient: rfc822; bob@remote.example\nAction: " +
           action + "\nStatus: " + status +
           "\nRemote-MTA: dns; mx.remote.example\nDiagnostic-Code: smtp; 250 2.0.0 Ok\n\n--b--\n";
  };
  auto send = [&](const std::string& rcpt, const std::string& raw) {
    milter::Transaction t;
    engine.connect(t, "localhost", "127.0.0.1", 0); // Postfix's own reports (cleanup)
    REQUIRE(engine.envfrom(t, "", mta) == Step::proceed);
    engine.envrcpt(t, rcpt);
    REQUIRE(engine.data(t) == Step::proceed);
    feed(engine, t, raw);
    return engine.eom(t, mta);
  };

  auto v = send("pli-bounce+dsent@example.org", dsn("relayed", "2.0.0"));
  CHECK(v.outcome == milter::Outcome::dsn_recorded);
  CHECK(v.discard);
  auto d = ts.store->get_delivery("dsent").value();
  CHECK(static_cast<model::Status>(d.status()) == model::Status::delivered);

  // The same DSN again records nothing.
  send("pli-bounce+dsent@example.org", dsn("relayed", "2.0.0"));
  CHECK(ts.store->events_of_message("mtest").value().size() == 2);

  // A second success report for the same delivery (its notice injected twice: the milter
  // killed between the injection and its `sent`), with other details: nothing more.
  send("pli-bounce+dsent@example.org",
       "X-Second: yes\n" + dsn("delivered", "2.0.0")
                               .replace(dsn("delivered", "2.0.0").find("mail.example.org"), 16,
                                        "other.example.org"));
  CHECK(ts.store->events_of_message("mtest").value().size() == 2);

  // A late "delayed" does not make it "sending" again (but is kept as evidence).
  send("<pli-bounce+DSENT@example.org>", dsn("delayed", "4.2.1"));
  auto events = ts.store->events_of_message("mtest").value();
  CHECK(events.size() == 3);
  CHECK(static_cast<model::Status>(ts.store->get_delivery("dsent")->status()) ==
        model::Status::delivered);
  CHECK(events.back().detail().at("status") == "4.2.1");
  CHECK(events.back().detail().at("remote_mta") == "mx.remote.example");

  // A young delivery not yet recorded as sent: the report is retried later (tempfail).
  store::NewMessage young;
  young.message.set_id("myoung");
  young.message.set_sent_at(1);
  store::pb::Delivery yd;
  yd.set_id("dyoung");
  yd.set_recipient("bob@remote.example");
  yd.set_created_at(util::now_micros());
  young.message.add_delivery_ids("dyoung");
  young.deliveries.push_back(yd);
  REQUIRE(ts.store->create_message(young).ok());
  auto vy = send("pli-bounce+dyoung@example.org", dsn("relayed", "2.0.0"));
  CHECK(milter::info(vy.outcome).smtp_code == "451");
  CHECK_FALSE(vy.discard);
  CHECK(ts.store->events_of_message("myoung").value().empty());

  // ... unless its `sent` is recorded while the report waits for it (unsent_wait).
  engine.unsent_wait = std::chrono::milliseconds(3000);
  std::thread recorder([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    REQUIRE(ts.store->append_events({{"dyoung", model::EventKind::sent, 3, {}, {}}}).ok());
  });
  auto vw = send("pli-bounce+dyoung@example.org", dsn("relayed", "2.0.0"));
  recorder.join();
  CHECK(vw.outcome == milter::Outcome::dsn_recorded);
  CHECK(static_cast<model::Status>(ts.store->get_delivery("dyoung")->status()) ==
        model::Status::delivered);
  engine.unsent_wait = std::chrono::milliseconds(0);

  // Never sent long ago, unknown: ignored, logged, discarded.
  auto v2 = send("pli-bounce+dnever@example.org", dsn("failed", "5.1.1"));
  CHECK(v2.outcome == milter::Outcome::dsn_unattributed);
  auto v3 = send("pli-bounce+dunknown@example.org", dsn("failed", "5.1.1"));
  CHECK(v3.outcome == milter::Outcome::dsn_unattributed);
  CHECK(v3.discard);
  CHECK(ts.store->events_of_message("mtest").value().size() == 3);

  // bounce.keep: recorded, then delivered to the bounce mailbox.
  auto keep_config = make_config("");
  const_cast<config::Config::Bounce&>(keep_config.bounce).keep = true;
  Engine keeping(keep_config, *ts.store);
  milter::Transaction t;
  keeping.connect(t, "localhost", "127.0.0.1", 0);
  keeping.envfrom(t, "", mta);
  keeping.envrcpt(t, "pli-bounce+dsent@example.org");
  keeping.data(t);
  feed(keeping, t, dsn("failed", "5.1.1"));
  auto vk = keeping.eom(t, mta);
  CHECK(vk.outcome == milter::Outcome::dsn_recorded);
  CHECK_FALSE(vk.discard);
  CHECK(static_cast<model::Status>(ts.store->get_delivery("dsent")->status()) ==
        model::Status::not_delivered);
}

TEST_CASE("a report about several recipients is matched by its decoded addresses",
          "[milter][dsn][xtext]")
{
  auto config = make_config();
  TempStore ts;
  Engine engine(config, *ts.store);
  engine.unsent_wait = std::chrono::milliseconds(0);
  Recording mta;
  mta.macros["i"] = "ABC124";

  store::NewMessage nm;
  nm.message.set_id("maddr");
  nm.message.set_sent_at(1);
  const std::pair<const char*, const char*> deliveries[] = {
      {"dplus", "jean+ao@remote.example"}, {"dutf8", "andr\xc3\xa9@remote.example"}};
  for (const auto& [id, rcpt] : deliveries) {
    store::pb::Delivery d;
    d.set_id(id);
    d.set_recipient(rcpt);
    nm.message.add_delivery_ids(id);
    nm.deliveries.push_back(d);
  }
  REQUIRE(ts.store->create_message(nm).ok());
  REQUIRE(ts.store
              ->append_events({{"dplus", model::EventKind::sent, 2, {}, {}},
                               {"dutf8", model::EventKind::sent, 2, {}, {}}})
              .ok());

  // Forwarded recipients: only Original-Recipient names ours, xtext (RFC 3461) or utf-8
  // (RFC 6533); the other recipient of the report failed.
  auto report = [](const std::string& original) {
    return "From: MAILER-DAEMON@example.org\nSubject: report\nMIME-Version: 1.0\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
           "--b\nContent-Type: text/plain\n\nreport\n\n--b\n"
           "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mx.remote.example\n\n"
           "Final-Recipient: rfc822; someone-else@remote.example\nAction: failed\n"
           "Status: 5.1.1\n\n"
           "Final-Recipient: rfc822; forwarded@elsewhere.example\nOriginal-Recipient: " +
           original + "\nAction: relayed\nStatus: 2.0.0\n\n--b--\n";
  };
  auto send = [&](const std::string& rcpt, const std::string& raw) {
    milter::Transaction t;
    engine.connect(t, "localhost", "127.0.0.1", 0); // Postfix's own reports (cleanup)
    REQUIRE(engine.envfrom(t, "", mta) == Step::proceed);
    engine.envrcpt(t, rcpt);
    REQUIRE(engine.data(t) == Step::proceed);
    feed(engine, t, raw);
    return engine.eom(t, mta);
  };
  CHECK(send("pli-bounce+dplus@example.org", report("rfc822;jean+2Bao@remote.example")).outcome ==
        milter::Outcome::dsn_recorded);
  CHECK(static_cast<model::Status>(ts.store->get_delivery("dplus")->status()) ==
        model::Status::delivered);
  CHECK(send("pli-bounce+dutf8@example.org", report("utf-8; andr\\x{E9}@remote.example")).outcome ==
        milter::Outcome::dsn_recorded);
  CHECK(static_cast<model::Status>(ts.store->get_delivery("dutf8")->status()) ==
        model::Status::delivered);
}

TEST_CASE("internal domains compare as IDNs: U-labels and A-labels are the same domain",
          "[milter][idn]")
{
  auto config = make_config();
  config.policy.internal_domains = {"example.org", "xn--mairie-t-h1ab.fr",
                                    "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a"};
  TempStore ts;
  Engine engine(config, *ts.store);
  Recording mta;
  struct Row
  {
    std::string rcpt;
    milter::Recipient::Kind kind;
  };
  using K = milter::Recipient::Kind;
  const std::vector<Row> rows = {
      {"<agent@mairie-\xc3\xa9t\xc3\xa9.fr>", K::internal}, // U-label, A-label configured
      {"<agent@MAIRIE-\xc3\x89T\xc3\x89.fr>", K::internal}, // upper case, mapped (UTS #46)
      {"<\xe7\x94\xa8\xe6\x88\xb7@xn--fsqu00a.xn--4rr70v>", K::internal}, // A-label
      {"<x@sub.\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", K::internal},
      {"<x@mairie-ete.fr>", K::external},
      {"<x@[192.0.2.1]>", K::external},
      {"<x@xn--ambigu.fr>", K::external}, // not a valid A-label: compared as text
  };
  for (const auto& row : rows) {
    INFO(row.rcpt);
    milter::Transaction t;
    t.client_ip = "192.0.2.1";
    REQUIRE(engine.envfrom(t, "<alice@marches.example.org>", mta) == Step::proceed);
    engine.envrcpt(t, row.rcpt);
    CHECK(t.recipients[0].kind == row.kind);
  }
}
