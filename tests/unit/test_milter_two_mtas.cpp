// Two MTAs on one store: MTA A's milter registers a buyer's mail and re-injects its notice,
// A relays the notice through MTA B, and B's own bounce daemon reports its delivery to B's
// milter. B's smtpd milter lets pli's relayed notice through untouched; B's milter takes a
// report that arrives while A has not yet committed the notice's `sent` (on PostgreSQL, the
// other host's commit wakes it).
#include "core/milter/engine.hpp"
#include "core/milter/outcome.hpp"

#include "tests/unit/milter_fixture.hpp"
#include "tests/unit/store_backends.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <thread>

using namespace pli;
using milter::Engine;
using milter::Outcome;
using milter::Step;

namespace {

// Calls `during` with each envelope while the engine waits for the listener's reply (that
// is, before the engine records the notice's `sent`), then answers 250.
struct HookInjector final : milter::Injector
{
  std::function<void(const smtp::Envelope&)> during;
  std::vector<smtp::TxnResult> send(const std::vector<smtp::Envelope>& envelopes) override
  {
    std::vector<smtp::TxnResult> out;
    for (const auto& e : envelopes) {
      if (during) {
        during(e);
      }
      smtp::TxnResult r;
      r.ok = true;
      r.reply = "250 2.0.0 Ok: queued as A1";
      r.queue_id = "A1";
      out.push_back(r);
    }
    return out;
  }
};

config::Config two_mta_config()
{
  // Every address of the domain is a buyer's, the bounce address too (a broad pattern).
  auto c = config::load_from_string(R"(organisation: { name: "Région Exemple" }
store: { path: /tmp/unused }
milter: { socket: "unix:/tmp/unused.sock" }
policy:
  buyers: ["*@example.org"]
  internal_domains: ["example.org"]
  trusted_networks: ["192.0.2.0/24"]
bounce: { address: "pli-bounce@example.org" }
linkd: { public_url: "https://pli.example.org" }
notify: { not_delivered: false }
)",
                                    "test.yaml");
  REQUIRE(c.ok());
  return c.value();
}

std::string relayed_report(const std::string& envid)
{
  return "From: MAILER-DAEMON@mta-b.example.org\nSubject: Successful Mail Delivery Report\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
         "--b\nContent-Type: text/plain\n\nreport\n\n--b\n"
         "Content-Type: message/delivery-status\n\nReporting-MTA: dns; mta-b.example.org\n"
         "Original-Envelope-Id: " +
         envid +
         "\n\nFinal-Recipient: rfc822; bob@remote.example\nAction: relayed\nStatus: 2.0.0\n"
         "Remote-MTA: dns; mx.remote.example\nDiagnostic-Code: smtp; 250 2.0.0 Ok: queued\n\n"
         "--b--\n";
}

// A report as MTA B's bounce daemon hands it to B's milter (non_smtpd_milters: port 0).
// No Catch2 assertion inside (it also runs on another thread): a step that does not
// proceed gives a default verdict with `steps_ok` false.
struct Report
{
  bool steps_ok = false;
  milter::Verdict verdict;
};
Report report_through(Engine& engine, const std::string& delivery)
{
  test::Recording mta;
  mta.macros["i"] = "B1";
  milter::Transaction t;
  engine.connect(t, "localhost", "127.0.0.1", 0);
  Report r;
  if (engine.envfrom(t, "", mta) != Step::proceed ||
      engine.envrcpt(t, "pli-bounce+" + delivery + "@example.org") != Step::proceed ||
      engine.data(t) != Step::proceed) {
    return r;
  }
  test::feed(engine, t, relayed_report(delivery));
  r.verdict = engine.eom(t, mta);
  r.steps_ok = true;
  return r;
}

// How many events of `kind` the delivery's message has.
std::size_t count_events(store::Store& st, const store::pb::Delivery& d, model::EventKind kind)
{
  auto events = st.events_of_message(d.message());
  REQUIRE(events.ok());
  std::size_t n = 0;
  for (const auto& e : *events) {
    n += e.delivery() == d.id() && static_cast<model::EventKind>(e.kind()) == kind ? 1 : 0;
  }
  return n;
}

std::string delivery_of(const smtp::Envelope& e)
{
  const auto plus = e.mail_from.find('+');
  return e.mail_from.substr(plus + 1, e.mail_from.find('@') - plus - 1);
}

} // namespace

TEST_CASE("pli's own notice relayed through another MTA's smtpd passes untouched",
          "[milter][two_mtas]")
{
  const auto config = two_mta_config();
  test::TempStore ts;
  store::NewMessage nm;
  nm.message.set_id("m0123abc");
  nm.message.set_sent_at(1);
  store::pb::Delivery d;
  d.set_id("d0123abc");
  d.set_recipient("bob@remote.example");
  nm.message.add_delivery_ids(d.id());
  nm.deliveries.push_back(d);
  REQUIRE(ts.store->create_message(nm).ok());
  Engine engine(config, *ts.store);
  test::Recording mta;
  // The step that decides: MAIL FROM's, or else DATA's (RCPT proceeds for these).
  auto relayed = [&](const std::string& sender, const std::vector<std::string>& rcpts) {
    milter::Transaction t;
    engine.connect(t, "mta-a.example.org", "192.0.2.7", 41000); // MTA A, a trusted network
    if (const Step s = engine.envfrom(t, sender, mta); s != Step::proceed) {
      return s;
    }
    for (const auto& r : rcpts) {
      REQUIRE(engine.envrcpt(t, r) == Step::proceed);
    }
    return engine.data(t);
  };
  const std::vector<std::string> bob{"<bob@remote.example>"};
  // The notice of delivery d0123abc to its recipient, in any case: left alone.
  CHECK(relayed("<pli-bounce+d0123abc@example.org>", bob) == Step::accept);
  CHECK(relayed("<PLI-Bounce+D0123ABC@Example.ORG>", {"<Bob@Remote.Example>"}) == Step::accept);
  // The bare bounce address (pli-linkd's reply notices): left alone.
  CHECK(relayed("<pli-bounce@example.org>", {"<alice@example.org>"}) == Step::accept);
  CHECK(engine.counters().value(Outcome::accept_untouched) == 3);
  // Anything else from that return path is a buyer's mail like any other (registered): to
  // another recipient, to two, for a delivery pli never issued.
  CHECK(relayed("<pli-bounce+d0123abc@example.org>", {"<carol@remote.example>"}) == Step::proceed);
  CHECK(relayed("<pli-bounce+d0123abc@example.org>",
                {"<bob@remote.example>", "<carol@remote.example>"}) == Step::proceed);
  CHECK(relayed("<pli-bounce+dunknown@example.org>", bob) == Step::proceed);
  // Other addresses of the domain stay buyers.
  CHECK(relayed("<pli-bouncer@example.org>", bob) == Step::proceed);
  CHECK(relayed("<alice+pli-bounce@example.org>", bob) == Step::proceed);
  CHECK(relayed("<alice@example.org>", bob) == Step::proceed);
  CHECK(engine.counters().value(Outcome::accept_untouched) == 3);
}

TEST_CASE("on PostgreSQL, MTA B's milter takes the report of a notice whose sent MTA A has "
          "not yet committed",
          "[milter][dsn][two_mtas][pg]")
{
  const auto config = two_mta_config();
  test::AnyStore where(test::Backend::postgresql);
  auto store_a = where.open(); // MTA A's milter: registers, re-injects, records `sent`
  auto store_b = where.open(); // MTA B's milter: the relay's own reports
  auto injector = std::make_unique<HookInjector>();
  HookInjector& hook = *injector;
  Engine a(config, *store_a, util::now_micros, std::move(injector));
  Engine b(config, *store_b);

  std::string delivery;
  bool sent_before = true;
  Report early, waited;
  std::thread waiting;
  hook.during = [&](const smtp::Envelope& e) {
    // A is inside the injection: the delivery exists, its `sent` cannot be committed yet.
    delivery = delivery_of(e);
    auto d = store_b->get_delivery(delivery);
    sent_before = !d || d->sent_at() != 0;
    // Without waiting, B defers the report (451: Postfix brings it again).
    b.unsent_wait = std::chrono::milliseconds(0);
    early = report_through(b, delivery);
    // Waiting, B takes it once A commits (woken by A's commit, from another connection).
    b.unsent_wait = std::chrono::minutes(1);
    waiting = std::thread([&] { waited = report_through(b, delivery); });
  };

  test::Recording mta;
  mta.macros["i"] = "A0";
  milter::Transaction t;
  a.connect(t, "client.example.org", "192.0.2.1", 50000);
  REQUIRE(a.envfrom(t, "<alice@example.org>", mta) == Step::proceed);
  REQUIRE(a.envrcpt(t, "<bob@remote.example>") == Step::proceed);
  REQUIRE(a.data(t) == Step::proceed);
  test::feed(a, t,
             "From: Alice <alice@example.org>\nMessage-ID: <two-mtas@example.org>\n"
             "Subject: [AR] Lot 3\n\nMadame, Monsieur,\n");
  const auto registered = a.eom(t, mta);
  REQUIRE(waiting.joinable());
  waiting.join();

  CHECK(registered.outcome == Outcome::registered);
  CHECK_FALSE(sent_before);
  REQUIRE(early.steps_ok);
  CHECK(early.verdict.outcome == Outcome::tempfail_not_yet_sent);
  CHECK(milter::info(early.verdict.outcome).smtp_code == "451");
  CHECK_FALSE(early.verdict.discard);
  REQUIRE(waited.steps_ok);
  CHECK(waited.verdict.outcome == Outcome::dsn_recorded);
  CHECK(waited.verdict.discard);
  auto d = store_a->get_delivery(delivery);
  REQUIRE(d.ok());
  CHECK(static_cast<model::Status>(d->status()) == model::Status::delivered);
  // One `sent` (A's) and one `delivered` (B's).
  CHECK(count_events(*store_a, *d, model::EventKind::sent) == 1);
  CHECK(count_events(*store_a, *d, model::EventKind::delivered) == 1);

  // The same report again (Postfix retrying after the 451): nothing more.
  b.unsent_wait = std::chrono::milliseconds(0);
  CHECK(report_through(b, delivery).steps_ok);
  CHECK(count_events(*store_a, *d, model::EventKind::delivered) == 1);
}
