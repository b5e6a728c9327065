// The engine's decisions on a buyer's registered mail, for every result of the re-injection
// (a test double Injector records the envelopes and answers as scripted) and a real store:
// store full, listener refusing, unreachable, the final reply lost, a partial retry,
// internal recipients only, mode simple. Also the decision table and the counters.
#include "core/milter/engine.hpp"
#include "core/milter/engine_detail.hpp"
#include "core/milter/metrics.hpp"
#include "core/milter/outcome.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include "tests/unit/milter_fixture.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <deque>
#include <set>

using namespace pli;
using milter::Engine;
using milter::Outcome;
using milter::Step;

namespace {

// Answers each send() with the next scripted batch (results for its envelopes, in order;
// a missing result is a success), recording every envelope it was given.
struct ScriptedInjector final : milter::Injector
{
  std::deque<std::vector<smtp::TxnResult>> script;
  std::vector<std::vector<smtp::Envelope>> sent;
  std::vector<smtp::TxnResult> send(const std::vector<smtp::Envelope>& envelopes) override
  {
    sent.push_back(envelopes);
    std::vector<smtp::TxnResult> batch;
    if (!script.empty()) {
      batch = std::move(script.front());
      script.pop_front();
    }
    for (std::size_t i = batch.size(); i < envelopes.size(); ++i) {
      batch.push_back(ok("250 2.0.0 Ok: queued as Q" + std::to_string(i)));
    }
    batch.resize(envelopes.size());
    return batch;
  }
  static smtp::TxnResult ok(std::string reply)
  {
    smtp::TxnResult r;
    r.ok = true;
    r.temporary = false;
    r.reply = std::move(reply);
    r.queue_id = "Q";
    return r;
  }
  static smtp::TxnResult fail(smtp::Failure kind, bool temporary, std::string reply)
  {
    smtp::TxnResult r;
    r.ok = false;
    r.temporary = temporary;
    r.failure = kind;
    r.reply = std::move(reply);
    return r;
  }
};

struct Harness
{
  explicit Harness(std::uint64_t map_size_mb = 64, const std::string& policy = "")
      : ts(map_size_mb), config(test::make_config("notify: { not_delivered: false }\n", policy))
  {
    auto i = std::make_unique<ScriptedInjector>();
    injector = i.get();
    engine = std::make_unique<Engine>(config, *ts.store, util::now_micros, std::move(i));
  }

  // A buyer's mail from a trusted network to `rcpts`, up to its end of message.
  milter::Verdict send(const std::vector<std::string>& rcpts, const std::string& raw)
  {
    milter::Transaction t;
    t.client_ip = "192.0.2.1";
    mta = test::Recording{};
    mta.macros["i"] = "QID" + std::to_string(++messages);
    REQUIRE(engine->envfrom(t, "<alice@marches.example.org>", mta) == Step::proceed);
    for (const auto& r : rcpts) {
      REQUIRE(engine->envrcpt(t, "<" + r + ">") == Step::proceed);
    }
    REQUIRE(engine->data(t) == Step::proceed);
    test::feed(*engine, t, raw);
    return engine->eom(t, mta);
  }

  // The deliveries of every envelope injected so far that the store records as sent.
  std::size_t deliveries_sent()
  {
    std::set<std::string> ids;
    for (const auto& batch : injector->sent) {
      for (const auto& e : batch) {
        const auto plus = e.mail_from.find('+');
        ids.insert(e.mail_from.substr(plus + 1, e.mail_from.find('@') - plus - 1));
      }
    }
    std::size_t n = 0;
    for (const auto& id : ids) {
      auto d = ts.store->get_delivery(id);
      REQUIRE(d.ok());
      n += d->sent_at() != 0 ? 1 : 0;
    }
    return n;
  }

  test::TempStore ts;
  config::Config config;
  ScriptedInjector* injector = nullptr;
  std::unique_ptr<Engine> engine;
  test::Recording mta;
  int messages = 0;
};

const std::string k_mail = "From: Alice <alice@marches.example.org>\n"
                           "Message-ID: <m1@marches.example.org>\n"
                           "Subject: [AR] Résultat\n"
                           "\n"
                           "Madame, Monsieur,\n";

} // namespace

TEST_CASE("the decision table: one row per outcome, replies of the right class",
          "[milter][outcome]")
{
  static_assert(milter::table_is_consistent());
  for (std::size_t i = 0; i < milter::k_outcomes.size(); ++i) {
    const auto& row = milter::k_outcomes[i];
    INFO(row.name);
    CHECK(static_cast<std::size_t>(row.outcome) == i);
    CHECK(milter::outcome_name(row.outcome) == row.name);
  }
  // The replies Postfix relays to clients (what the integration tests and clients see).
  CHECK(milter::info(Outcome::tempfail_store_full).text == "pli store full, try again later");
  CHECK(milter::info(Outcome::reject_unknown_delivery).smtp_code == "550");
  CHECK(milter::info(Outcome::reject_unknown_delivery).enhanced == "5.1.1");
  CHECK(milter::info(Outcome::reject_too_many_recipients).action == milter::Action::tempfail);
  CHECK(milter::info(Outcome::reject_invalid_text).action == milter::Action::reject);
  CHECK(milter::info(Outcome::registered).smtp_code.empty());
  // Each step answers with its outcome's row.
  CHECK_FALSE(milter::outcome_of(Step::proceed).has_value());
  CHECK(milter::outcome_of(Step::accept) == Outcome::accept_untouched);
  CHECK(milter::outcome_of(Step::reject_recipient) == Outcome::reject_unknown_delivery);
  CHECK(milter::outcome_of(Step::defer_recipient) == Outcome::tempfail_recipient_not_yet_sent);
  CHECK(milter::outcome_of(Step::store_error) == Outcome::tempfail_store_error);
}

TEST_CASE("a store that cannot be reached tempfails (451), as every store error but full",
          "[milter][outcome]")
{
  using pli::store::Errc;
  for (Errc code : {Errc::unavailable, Errc::io, Errc::invalid}) {
    const auto v =
        milter::detail::store_failure_logged("Q1", util::Error{code, "database down"}, "a@b");
    INFO(static_cast<int>(code));
    CHECK(v.outcome == Outcome::tempfail_store_error);
    CHECK(milter::info(v.outcome).smtp_code == "451");
    CHECK(milter::info(v.outcome).action == milter::Action::tempfail);
  }
  CHECK(
      milter::detail::store_failure_logged("Q1", util::Error{Errc::full, "full"}, "a@b").outcome ==
      Outcome::tempfail_store_full);
}

TEST_CASE("the counters render every outcome for Prometheus", "[milter][metrics]")
{
  milter::Counters c;
  c.add(Outcome::registered);
  c.add(Outcome::registered);
  c.add(Outcome::tempfail_store_full);
  CHECK(c.value(Outcome::registered) == 2);
  const std::string text = c.render();
  CHECK(text.find("# TYPE pli_milter_decisions_total counter\n") != std::string::npos);
  CHECK(text.find("pli_milter_decisions_total{outcome=\"registered\"} 2\n") != std::string::npos);
  CHECK(text.find("pli_milter_decisions_total{outcome=\"tempfail_store_full\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("pli_milter_decisions_total{outcome=\"accept_untouched\"} 0\n") !=
        std::string::npos);
  std::size_t lines = 0;
  for (char ch : text) {
    lines += ch == '\n' ? 1 : 0;
  }
  CHECK(lines == milter::k_outcomes.size() + 2); // one HELP, one TYPE
}

TEST_CASE("registered: one notice per external recipient, the original discarded",
          "[milter][registration]")
{
  Harness h;
  const auto v = h.send({"bob@remote.example", "carol@remote.example"}, k_mail);
  CHECK(v.outcome == Outcome::registered);
  CHECK(v.discard);
  REQUIRE(h.injector->sent.size() == 1);
  REQUIRE(h.injector->sent[0].size() == 2);
  const auto& e = h.injector->sent[0][0];
  CHECK(e.rcpt == "bob@remote.example");
  CHECK(e.mail_from.rfind("pli-bounce+d", 0) == 0);
  CHECK(e.notify == "SUCCESS,FAILURE,DELAY");
  CHECK(e.data.find("Madame, Monsieur") == std::string::npos); // a notice, never the body
  CHECK(h.mta.deleted.size() == 2);
  CHECK(h.deliveries_sent() == 2);
  CHECK(h.engine->counters().value(Outcome::registered) == 1);
}

TEST_CASE("store full: tempfailed before anything is injected", "[milter][registration]")
{
  Harness h(1); // a 1 MB map cannot hold a 2 MB mail
  const std::string big(2 * 1024 * 1024, 'x');
  std::string body;
  for (std::size_t i = 0; i < big.size(); i += 76) {
    body += util::base64url(util::random_bytes(57)) + "\n";
  }
  const auto v = h.send({"bob@remote.example"}, k_mail + body);
  CHECK(v.outcome == Outcome::tempfail_store_full);
  CHECK(milter::info(v.outcome).smtp_code == "451");
  CHECK(h.injector->sent.empty());
  CHECK(h.mta.deleted.empty());
  CHECK(h.engine->counters().value(Outcome::tempfail_store_full) == 1);
}

TEST_CASE("the listener refuses for now, or cannot be reached: tempfail, then one retry sends",
          "[milter][registration]")
{
  using F = smtp::Failure;
  struct Row
  {
    smtp::TxnResult result;
    Outcome expected;
  };
  const std::vector<Row> rows = {
      {ScriptedInjector::fail(F::reply, true, "451 4.3.0 Error: queue file write error"),
       Outcome::tempfail_reinject_refused},
      {ScriptedInjector::fail(F::io, true, "read timeout"), Outcome::tempfail_reinject_refused},
      {ScriptedInjector::fail(F::unreachable, true,
                              "cannot connect to 127.0.0.1:10025: Connection refused"),
       Outcome::tempfail_reinject_unreachable},
      // The final reply lost: the listener may have queued the notice; the retry sends it
      // again for the same delivery (the same Message-ID).
      {ScriptedInjector::fail(F::unreachable, true, "connection closed by the server"),
       Outcome::tempfail_reinject_unreachable},
  };
  for (const auto& row : rows) {
    INFO(row.result.reply);
    Harness h;
    h.injector->script.push_back({row.result});
    const auto first = h.send({"bob@remote.example"}, k_mail);
    CHECK(first.outcome == row.expected);
    CHECK_FALSE(first.discard);
    CHECK(h.mta.deleted.empty()); // the client keeps the whole mail and retries
    CHECK(h.deliveries_sent() == 0);
    CHECK(h.engine->counters().value(row.expected) == 1);

    const auto retry = h.send({"bob@remote.example"}, k_mail);
    CHECK(retry.outcome == Outcome::registered_retry);
    CHECK(retry.discard);
    REQUIRE(h.injector->sent.size() == 2);
    CHECK(h.injector->sent[0][0].mail_from == h.injector->sent[1][0].mail_from);
    CHECK(h.deliveries_sent() == 1);
  }
}

TEST_CASE("a partial failure: the retry injects only the recipient not yet sent",
          "[milter][registration]")
{
  Harness h;
  h.injector->script.push_back({ScriptedInjector::ok("250 2.0.0 Ok: queued as A1"),
                                ScriptedInjector::fail(smtp::Failure::reply, true,
                                                       "452 4.3.1 Insufficient system storage")});
  const auto first = h.send({"bob@remote.example", "carol@remote.example"}, k_mail);
  CHECK(first.outcome == Outcome::tempfail_reinject_refused);
  CHECK(h.deliveries_sent() == 1);

  const auto retry = h.send({"bob@remote.example", "carol@remote.example"}, k_mail);
  CHECK(retry.outcome == Outcome::registered_retry);
  CHECK(retry.discard);
  REQUIRE(h.injector->sent.size() == 2);
  REQUIRE(h.injector->sent[1].size() == 1);
  CHECK(h.injector->sent[1][0].rcpt == "carol@remote.example");
  CHECK(h.deliveries_sent() == 2);
  CHECK(h.mta.deleted.size() == 2); // both removed from the retried original
}

TEST_CASE("a recipient refused for good is a recorded failure, the others registered",
          "[milter][registration]")
{
  Harness h;
  h.injector->script.push_back(
      {ScriptedInjector::fail(smtp::Failure::reply, false, "553 5.6.7 SMTPUTF8 required"),
       ScriptedInjector::ok("250 2.0.0 Ok: queued as A2")});
  const auto v = h.send({"andré@remote.example", "carol@remote.example"}, k_mail);
  CHECK(v.outcome == Outcome::registered);
  CHECK(v.discard);
  CHECK(h.engine->counters().value(Outcome::recipient_refused) == 1);
  CHECK(h.engine->counters().value(Outcome::registered) == 1);
  CHECK(h.deliveries_sent() == 1);
}

TEST_CASE("internal recipients only: nothing injected, the options stripped",
          "[milter][registration]")
{
  Harness h;
  milter::Transaction t;
  t.client_ip = "192.0.2.1";
  REQUIRE(h.engine->envfrom(t, "<alice@marches.example.org>", h.mta) == Step::proceed);
  REQUIRE(h.engine->envrcpt(t, "<colleague@example.org>") == Step::proceed);
  REQUIRE(h.engine->data(t) == Step::proceed);
  test::feed(*h.engine, t, k_mail);
  const auto v = h.engine->eom(t, h.mta);
  CHECK(v.outcome == Outcome::accept_untouched);
  CHECK_FALSE(v.discard);
  CHECK(h.injector->sent.empty());
  REQUIRE(h.mta.changed.size() == 1);
  CHECK(h.mta.changed[0].first == "Subject");
  CHECK(h.mta.changed[0].second == "=?UTF-8?b?UsOpc3VsdGF0?="); // "Résultat", without [AR]

  // A registered mail with an internal recipient too keeps the original for that one.
  const auto mixed = h.send({"bob@remote.example", "colleague@example.org"}, k_mail);
  CHECK(mixed.outcome == Outcome::registered);
  CHECK_FALSE(mixed.discard);
  CHECK(h.mta.deleted == std::vector<std::string>{"<bob@remote.example>"});
}

TEST_CASE("mode simple: the original content is re-injected, without pli's options",
          "[milter][registration]")
{
  Harness h;
  const auto v = h.send({"bob@remote.example"}, "From: Alice <alice@marches.example.org>\n"
                                                "Subject: [SIMPLE] Résultat\n"
                                                "X-Pli-Options: reply=no\n"
                                                "\n"
                                                "Madame, Monsieur,\n");
  CHECK(v.outcome == Outcome::registered);
  REQUIRE(h.injector->sent.size() == 1);
  const std::string& data = h.injector->sent[0][0].data;
  CHECK(data.find("Madame, Monsieur,") != std::string::npos);
  CHECK(data.find("X-Pli-Options") == std::string::npos);
  CHECK(data.find("[SIMPLE]") == std::string::npos);
  CHECK(data.find("Subject: ") != std::string::npos);
}

TEST_CASE("Postfix refusing to remove a recipient tempfails the message", "[milter][registration]")
{
  struct Refusing final : test::Recording
  {
    bool delete_recipient(const std::string&) override { return false; }
  };
  Harness h;
  milter::Transaction t;
  t.client_ip = "192.0.2.1";
  Refusing mta;
  REQUIRE(h.engine->envfrom(t, "<alice@marches.example.org>", mta) == Step::proceed);
  REQUIRE(h.engine->envrcpt(t, "<bob@remote.example>") == Step::proceed);
  REQUIRE(h.engine->data(t) == Step::proceed);
  test::feed(*h.engine, t, k_mail);
  const auto v = h.engine->eom(t, mta);
  CHECK(v.outcome == Outcome::tempfail_update_recipients);
  CHECK(milter::info(v.outcome).text == "pli could not update the recipients");
}

TEST_CASE("milter.metrics_listen is a loopback HOST:PORT", "[milter][metrics][config]")
{
  const std::vector<std::pair<std::string, bool>> rows = {
      {"127.0.0.1:9465", true}, {"localhost:9465", true},  {"::1:9465", true},
      {"0.0.0.0:9465", false},  {"192.0.2.1:9465", false}, {"127.0.0.1", false},
      {"127.0.0.1:x", false},
  };
  for (const auto& [value, ok] : rows) {
    INFO(value);
    auto c = config::load_from_string(R"(organisation: { name: "R" }
store: { path: /tmp/unused }
milter: { socket: "unix:/tmp/unused.sock", metrics_listen: ")" +
                                          value + R"(" }
policy: { buyers: ["*@example.org"] }
bounce: { address: "pli-bounce@example.org" }
linkd: { public_url: "https://pli.example.org" }
)",
                                      "test.yaml");
    CHECK(c.ok() == ok);
    if (ok) {
      CHECK(c.value().milter.metrics_listen == value);
    }
  }
}

TEST_CASE("the SMTP client says why a transaction failed: no listener is unreachable",
          "[milter][smtp]")
{
  // A port nothing listens on: bound, never listened on, so that connect() is refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  smtp::Options o;
  o.port = ntohs(a.sin_port);
  o.timeout_seconds = 2;
  const auto results = smtp::send(
      o, {smtp::Envelope{"a@example.org", "", "", "b@example.org", "", "Subject: x\r\n\r\nx\r\n"}});
  ::close(fd);
  REQUIRE(results.size() == 1);
  CHECK_FALSE(results[0].ok);
  CHECK(results[0].temporary);
  CHECK(results[0].failure == smtp::Failure::unreachable);
}
