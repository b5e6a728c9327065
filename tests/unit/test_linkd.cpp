// pli-linkd's pages (App::handle) over a real LMDB store in a temporary directory, with
// the clock injected: the landing page never records a read, the POST does, content
// URLs need the read, expired / revoked / unknown links, the unknown-token rate limit,
// escaping of hostile text, English pages, replies; and the header helpers.
#include "core/config/config.hpp"
#include "core/linkd/app.hpp"
#include "core/linkd/event_writer.hpp"
#include "core/linkd/http.hpp"
#include "core/linkd/reply_mail.hpp"
#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"
#include "core/util/time.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <date/date.h>
#include <date/tz.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;
using namespace pli;
using linkd::App;
using linkd::Request;
using linkd::Response;

namespace {

constexpr util::Micros k_second = 1000000LL;
constexpr util::Micros k_day = 86400LL * k_second;
constexpr util::Micros k_t0 = 1656685605LL * k_second; // 2022-07-01 14:26:45 UTC

using pli::test::TempDir;

config::Config make_config(const fs::path& store, const std::string& locale = "fr",
                           const std::string& extra_linkd = "")
{
  // reinject on port 1: nothing listens there, the sender's notice fails at once.
  auto c =
      config::load_from_string("organisation: { name: \"Région <Exemple>\", locale: " + locale +
                                   ", timezone: Europe/Paris }\n"
                                   "store: { path: " +
                                   store.string() +
                                   " }\n"
                                   "milter: { socket: \"unix:/tmp/x.sock\" }\n"
                                   "policy: { buyers: [\"*@buyer.example\"] }\n"
                                   "reinject: { host: 127.0.0.1, port: 1, timeout_seconds: 2 }\n"
                                   "bounce: { address: \"pli-bounce@buyer.example\" }\n"
                                   "linkd: { public_url: \"https://pli.example.org\"" +
                                   extra_linkd + " }\n",
                               "test.yaml");
  REQUIRE(c.ok());
  return c.value();
}

struct Fixture
{
  TempDir dir;
  config::Config config;
  std::unique_ptr<store::Store> store;
  util::Micros now = k_t0 + k_second;
  std::unique_ptr<App> app;
  std::string token = "tok_abcdefghijklmnopqrstu";
  std::string delivery = "dtest0000000000001";

  explicit Fixture(const std::string& locale = "fr", bool reply_allowed = false,
                   const std::string& subject = "Résultat <script>alert(1)</script> \"x\"")
      : config(make_config(dir.path / "store", locale))
  {
    auto s = store::open_lmdb({(dir.path / "store").string(), 64, false});
    REQUIRE(s.ok());
    store = std::move(s.value());
    store::NewMessage nm;
    nm.message.set_id("mtest00000000001");
    nm.message.set_message_id("t1@buyer.example");
    nm.message.set_subject(subject);
    nm.message.set_type(8);
    nm.message.set_mode(1);
    nm.message.set_reply_allowed(reply_allowed);
    nm.message.set_sender("alice@buyer.example");
    nm.message.set_from_header("Alice <alice@buyer.example>");
    nm.message.set_sent_at(k_t0);
    nm.message.set_text_body("Bonjour <b>ici</b>");
    nm.message.set_html_body("<p>HTML-BODY</p><script>x()</script>");
    auto* a = nm.message.add_attachments();
    a->set_name("rapport \"final\".pdf");
    a->set_media_type("application/pdf\r\nX-Evil: 1");
    a->set_size(5);
    a->set_sha256(util::sha256_hex("%PDF-"));
    nm.blobs[a->sha256()] = "%PDF-";
    nm.message.add_delivery_ids(delivery);
    store::pb::Delivery d;
    d.set_id(delivery);
    d.set_recipient("bob@remote.example");
    d.set_created_at(k_t0);
    d.set_expires_at(k_t0 + 90 * k_day);
    d.set_token_hash(util::sha256_hex(token));
    nm.deliveries.push_back(d);
    REQUIRE(store->create_message(nm).ok());
    app = std::make_unique<App>(config, *store, [this] { return now; });
  }

  Response call(const std::string& method, const std::string& path,
                const std::string& ip = "192.0.2.1", const std::string& ua = "UA/1")
  {
    Request r;
    r.method = method;
    r.path = path;
    r.client_ip = ip;
    r.user_agent = ua;
    return app->handle(r);
  }

  store::pb::Delivery get() { return store->get_delivery(delivery).value(); }
  int count(model::EventKind k)
  {
    int n = 0;
    auto events = store->events_of_message("mtest00000000001");
    for (const auto& e : events.value()) {
      n += e.kind() == static_cast<std::uint32_t>(k);
    }
    return n;
  }
};

std::string header(const Response& r, const std::string& name)
{
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

bool contains(const std::string& s, const std::string& part)
{
  return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("linkd: GET of the landing page never records a read", "[linkd]")
{
  Fixture f;
  const auto before = f.get().status();
  for (int i = 0; i < 20; ++i) {
    auto r = f.call("GET", "/m/" + f.token);
    REQUIRE(r.status == 200);
    CHECK(r.route == linkd::Route::landing);
    CHECK(contains(r.body, "<form method=\"post\" action=\"/m/" + f.token + "\">"));
    f.now += k_second;
  }
  CHECK(f.call("HEAD", "/m/" + f.token).status == 200);
  CHECK(f.get().status() == before);
  CHECK(f.get().read_at() == 0);
  CHECK(f.count(model::EventKind::read) == 0);
  CHECK(f.count(model::EventKind::fetched) == 1); // one per 10 minutes
  f.now += 601 * k_second;
  f.call("GET", "/m/" + f.token);
  CHECK(f.count(model::EventKind::fetched) == 2);
}

TEST_CASE("linkd: POST records the first read; repeats within the interval are counted", "[linkd]")
{
  Fixture f;
  auto r = f.call("POST", "/m/" + f.token, "198.51.100.4", "Mozilla/5.0 test");
  REQUIRE(r.status == 200);
  CHECK(contains(r.body, "Accusé de réception enregistré"));
  CHECK(contains(r.body, "Bonjour &lt;b&gt;ici&lt;&#x2F;b&gt;"));
  CHECK_FALSE(contains(r.body, "HTML-BODY")); // never inlined
  CHECK(contains(r.body, "sandbox src=\"/m/" + f.token + "/html\""));
  CHECK(f.get().status() == static_cast<std::uint32_t>(model::Status::read));
  const auto first = f.get().read_at();
  CHECK(first == f.now);
  // Within linkd.repeat_interval_minutes (10) of the recorded read: shown, counted only.
  for (int i = 0; i < 500; ++i) {
    f.now += k_second;
    REQUIRE(f.call("POST", "/m/" + f.token).status == 200);
  }
  CHECK(f.count(model::EventKind::read) == 1);
  // The first one after the interval is recorded, with the count.
  f.now += 600 * k_second;
  auto later = f.call("POST", "/m/" + f.token);
  REQUIRE(later.status == 200);
  CHECK(contains(later.body, "Bonjour"));
  CHECK(f.count(model::EventKind::read) == 2);
  CHECK(f.get().read_at() == first);
  auto events = f.store->events_of_message("mtest00000000001").value();
  const auto& e = events.front();
  CHECK(e.detail().at("ip") == "198.51.100.4");
  CHECK(e.detail().at("user_agent") == "Mozilla/5.0 test");
  CHECK(e.detail().count("repeats") == 0);
  CHECK(events.back().detail().at("repeats") == "500");
}

TEST_CASE("linkd: repeated downloads of one file are recorded once per interval", "[linkd]")
{
  Fixture f;
  REQUIRE(f.call("POST", "/m/" + f.token).status == 200);
  for (int i = 0; i < 50; ++i) {
    f.now += k_second;
    REQUIRE(f.call("GET", "/m/" + f.token + "/a/0").status == 200);
  }
  CHECK(f.count(model::EventKind::download) == 1);
  f.now += 601 * k_second;
  REQUIRE(f.call("GET", "/m/" + f.token + "/a/0").status == 200);
  CHECK(f.count(model::EventKind::download) == 2);
  auto events = f.store->events_of_message("mtest00000000001").value();
  CHECK(events.back().detail().at("repeats") == "49");
}

TEST_CASE("linkd: RepeatCounter keeps the count of an event that could not be recorded", "[linkd]")
{
  linkd::RepeatCounter c(600 * k_second, 2);
  CHECK(c.take("a", k_t0) == std::optional<std::uint64_t>(0));
  CHECK(!c.take("a", k_t0 + k_second));
  CHECK(!c.take("a", k_t0 + 2 * k_second));
  const auto due = c.take("a", k_t0 + 601 * k_second);
  CHECK(due == std::optional<std::uint64_t>(2));
  c.failed("a", *due); // its append failed (nothing shown): the next one records the 2
  CHECK(c.take("a", k_t0 + 602 * k_second) == std::optional<std::uint64_t>(2));
  CHECK(c.take("b", k_t0, true) == std::optional<std::uint64_t>(0));
  CHECK(!c.take("b", k_t0 + k_second));
  CHECK(c.take("b", k_t0 + 2 * k_second, true) == std::optional<std::uint64_t>(1));
  // Bounded: a third key evicts one, memory stays at two keys.
  CHECK(c.take("c", k_t0 + 3 * k_second) == std::optional<std::uint64_t>(0));
}

TEST_CASE("linkd: the unknown-token limit counts IPv6 per /64 and survives a flood", "[linkd]")
{
  CHECK(linkd::client_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64");
  CHECK(linkd::client_key("2001:DB8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64");
  CHECK(linkd::client_key("::ffff:192.0.2.1") == "192.0.2.1");
  CHECK(linkd::client_key("192.0.2.1") == "192.0.2.1");
  CHECK(linkd::client_key("bob@example.org") == "bob@example.org");

  linkd::FailureLimiter rotating(5);
  for (int i = 0; i < 5; ++i) {
    rotating.failure("2001:db8:1:2::" + std::to_string(i + 1), k_t0);
  }
  CHECK(rotating.blocked("2001:db8:1:2:abcd::9", k_t0)); // another address of the /64
  CHECK_FALSE(rotating.blocked("2001:db8:1:3::1", k_t0));

  // A shard full of other clients never forgets a blocked one (it was cleared).
  linkd::FailureLimiter small(3, 16); // one client per shard
  for (int i = 0; i < 3; ++i) {
    small.failure("198.51.100.1", k_t0);
  }
  REQUIRE(small.blocked("198.51.100.1", k_t0));
  for (int i = 0; i < 2000; ++i) {
    small.failure("203.0.113." + std::to_string(i % 250) + std::to_string(i), k_t0);
  }
  CHECK(small.blocked("198.51.100.1", k_t0));
  CHECK_FALSE(small.blocked("198.51.100.1", k_t0 + 61 * k_second));
}

TEST_CASE("linkd: content URLs need the read; downloads are safe", "[linkd]")
{
  Fixture f;
  for (const char* p : {"/html", "/a/0", "/reply"}) {
    auto r = f.call("GET", "/m/" + f.token + p);
    CHECK(r.status == 403);
  }
  CHECK(f.count(model::EventKind::download) == 0);
  f.call("POST", "/m/" + f.token);
  auto a = f.call("GET", "/m/" + f.token + "/a/0");
  REQUIRE(a.status == 200);
  CHECK(a.body == "%PDF-");
  CHECK(a.content_type == "application/octet-stream"); // the declared type had CR/LF
  CHECK(header(a, "Content-Disposition") == "attachment; filename=\"rapport _final_.pdf\"; "
                                            "filename*=UTF-8''rapport%20%22final%22.pdf");
  CHECK(header(a, "X-Content-Type-Options") == "nosniff");
  CHECK(f.count(model::EventKind::download) == 1);
  CHECK(f.call("GET", "/m/" + f.token + "/a/1").status == 404);
  CHECK(f.call("GET", "/m/" + f.token + "/a/-1").status == 404);
  CHECK(f.call("GET", "/m/" + f.token + "/a/0x").status == 404);
  auto h = f.call("GET", "/m/" + f.token + "/html");
  REQUIRE(h.status == 200);
  CHECK(contains(header(h, "Content-Security-Policy"), "sandbox"));
  CHECK(contains(header(h, "Content-Security-Policy"), "frame-ancestors 'self'"));
  CHECK(f.call("DELETE", "/m/" + f.token).status == 405);
}

TEST_CASE("linkd: hostile subjects are escaped; security headers on every page", "[linkd]")
{
  Fixture f;
  auto r = f.call("GET", "/m/" + f.token);
  CHECK_FALSE(contains(r.body, "<script"));
  CHECK(contains(r.body, "&lt;script&gt;alert(1)&lt;&#x2F;script&gt; &quot;x&quot;"));
  CHECK(contains(r.body, "Région &lt;Exemple&gt;"));
  for (const auto& resp : {r, f.call("GET", "/nowhere"), f.call("GET", "/healthz"),
                           f.call("GET", "/static/pli.css"), f.call("GET", "/m/short")}) {
    CHECK(header(resp, "Cache-Control") == "no-store");
    CHECK(header(resp, "Referrer-Policy") == "no-referrer");
    CHECK(header(resp, "X-Content-Type-Options") == "nosniff");
    CHECK(contains(header(resp, "Content-Security-Policy"), "frame-ancestors 'none'"));
  }
}

TEST_CASE("linkd: expired and revoked links", "[linkd]")
{
  SECTION("expired")
  {
    Fixture f;
    f.now = k_t0 + 91 * k_day;
    auto r = f.call("GET", "/m/" + f.token);
    CHECK(r.status == 410);
    CHECK(contains(r.body, "Lien expiré"));
    CHECK(f.call("POST", "/m/" + f.token).status == 410);
    CHECK(f.count(model::EventKind::read) == 0);
  }
  SECTION("revoked")
  {
    Fixture f;
    store::NewEvent e;
    e.delivery = f.delivery;
    e.kind = model::EventKind::revoked;
    e.at = f.now;
    REQUIRE(f.store->append_events({e}).ok());
    auto r = f.call("POST", "/m/" + f.token);
    CHECK(r.status == 410);
    CHECK(contains(r.body, "Lien révoqué"));
    CHECK(f.count(model::EventKind::read) == 0);
  }
}

TEST_CASE("linkd: unknown tokens are rate-limited per client address", "[linkd]")
{
  Fixture f;
  auto r = f.call("GET", "/m/AAAAAAAAAAAAAAAAAAAAAA", "203.0.113.5");
  CHECK(r.status == 404);
  CHECK(contains(r.body, "Lien inconnu"));
  for (int i = 1; i < 20; ++i) {
    CHECK(f.call("GET", "/m/x" + std::to_string(i), "203.0.113.5").status == 404);
  }
  auto limited = f.call("GET", "/m/AAAAAAAAAAAAAAAAAAAAAA", "203.0.113.5");
  CHECK(limited.status == 429);
  CHECK(header(limited, "Retry-After") == "60");
  // A valid link is answered even from the blocked address (a whole NAT behind it).
  CHECK(f.call("GET", "/m/" + f.token, "203.0.113.5").status == 200);
  CHECK(f.call("POST", "/m/" + f.token, "203.0.113.5").status == 200);
  CHECK(f.call("GET", "/m/" + f.token, "203.0.113.6").status == 200);
  CHECK(f.call("GET", "/m/AAAAAAAAAAAAAAAAAAAAAB", "203.0.113.5").status == 429);
  f.now += 61 * k_second;
  CHECK(f.call("GET", "/m/AAAAAAAAAAAAAAAAAAAAAB", "203.0.113.5").status == 404);
  CHECK(f.app->metrics().counter(linkd::Counter::rate_limited) == 2);
  CHECK(f.app->metrics().counter(linkd::Counter::unknown_token) == 21);
}

TEST_CASE("linkd: English pages when organisation.locale is en", "[linkd]")
{
  Fixture f("en");
  auto r = f.call("GET", "/m/" + f.token);
  CHECK(contains(r.body, "<html lang=\"en\">"));
  CHECK(contains(r.body, "Open the content of the mail"));
  CHECK(contains(r.body, "Rejection letter"));
  CHECK(contains(f.call("GET", "/m/AAAAAAAAAAAAAAAAAAAAAA").body, "Unknown link"));
  CHECK(contains(f.call("POST", "/m/" + f.token).body, "Acknowledgment of receipt recorded"));
}

TEST_CASE("linkd: replies are stored and recorded; limits", "[linkd]")
{
  SECTION("not allowed")
  {
    Fixture f("fr", false);
    f.call("POST", "/m/" + f.token);
    CHECK(f.call("GET", "/m/" + f.token + "/reply").status == 403);
  }
  SECTION("allowed")
  {
    Fixture f("fr", true);
    Request r;
    r.method = "POST";
    r.path = "/m/" + f.token + "/reply";
    r.client_ip = "192.0.2.9";
    r.form["text"] = "Voici <b>notre</b> réponse\r\nligne 2";
    r.files.push_back({"files", "../../a\r\n.pdf", "application/pdf", "PDFDATA"});
    CHECK(f.app->handle(r).status == 403); // before the read
    f.call("POST", "/m/" + f.token);
    auto form = f.call("GET", "/m/" + f.token + "/reply");
    REQUIRE(form.status == 200);
    CHECK(contains(form.body, "<label for=\"text\">"));

    Request empty = r;
    empty.form["text"] = " \n ";
    CHECK(f.app->handle(empty).status == 400);
    Request many = r;
    for (int i = 0; i < 11; ++i) {
      many.files.push_back({"files", "f.txt", "text/plain", "x"});
    }
    CHECK(f.app->handle(many).status == 413);
    CHECK(f.count(model::EventKind::reply) == 0);

    auto sent = f.app->handle(r);
    REQUIRE(sent.status == 200);
    CHECK(contains(sent.body, "Votre réponse a été transmise"));
    // Nothing listens on the reinject port: the answer does not wait for the notice, which
    // the outbox tries again later.
    CHECK_FALSE(contains(sent.body, "class=\"warning\""));
    CHECK(f.app->metrics().counter(linkd::Counter::reply) == 1);
    auto d = f.get();
    CHECK(d.status() == static_cast<std::uint32_t>(model::Status::reply_unread));
    REQUIRE(d.reply_ids_size() == 1);
    auto rep = f.store->get_reply(d.reply_ids(0)).value();
    CHECK(rep.text() == "Voici <b>notre</b> réponse\nligne 2");
    CHECK(rep.from() == "bob@remote.example");
    CHECK(rep.ip() == "192.0.2.9");
    REQUIRE(rep.attachments_size() == 1);
    CHECK(rep.attachments(0).name() == "a.pdf");
    CHECK(rep.attachments(0).media_type() == "application/pdf");
    CHECK(f.store->get_blob(rep.attachments(0).sha256()).value() == "PDFDATA");
    // The sender's link is minted when the notice is sent, never kept on disk before.
    CHECK(rep.token_hash().empty());
    CHECK(f.count(model::EventKind::reply) == 1);
  }
  SECTION("caps per delivery: count and bytes")
  {
    Fixture f("fr", true);
    f.config.linkd.max_replies_per_delivery = 2;
    f.config.linkd.max_reply_mb_per_delivery = 1;
    f.call("POST", "/m/" + f.token);
    Request r;
    r.method = "POST";
    r.path = "/m/" + f.token + "/reply";
    r.form["text"] = "Réponse";
    r.files.push_back({"files", "a.bin", "application/octet-stream", std::string(600000, 'a')});
    REQUIRE(f.app->handle(r).status == 200);
    auto big = f.app->handle(r); // 1.2 MB in all > 1 MB
    CHECK(big.status == 413);
    CHECK(contains(big.body, "Volume de réponses atteint"));
    CHECK(f.app->precheck(r, 700000)->status == 413);
    r.files.clear();
    REQUIRE(f.app->handle(r).status == 200);
    auto third = f.app->handle(r);
    CHECK(third.status == 403);
    CHECK(contains(third.body, "Nombre de réponses atteint"));
    CHECK(f.count(model::EventKind::reply) == 2);
    CHECK(f.get().reply_ids_size() == 2);
    // Before the body: the same answer, and for an unknown token a 404.
    CHECK(f.app->precheck(r, 100)->status == 403);
    r.path = "/m/AAAAAAAAAAAAAAAAAAAAAA/reply";
    CHECK(f.app->precheck(r, 100)->status == 404);
  }
}

TEST_CASE("linkd: /metrics for local clients only, Prometheus text", "[linkd]")
{
  Fixture f;
  f.call("GET", "/m/" + f.token);
  f.call("POST", "/m/" + f.token);
  CHECK(f.call("GET", "/metrics").status == 404);
  Request r;
  r.method = "GET";
  r.path = "/metrics";
  r.local = true;
  f.app->metrics().request(linkd::Route::landing, 200, 0.002);
  auto m = f.app->handle(r);
  REQUIRE(m.status == 200);
  CHECK(contains(m.content_type, "text/plain; version=0.0.4"));
  CHECK(contains(m.body, "pli_linkd_reads_total 1\n"));
  CHECK(contains(m.body, "pli_linkd_requests_total{route=\"landing\",status=\"200\"} 1\n"));
  CHECK(contains(m.body, "pli_linkd_request_duration_seconds_bucket{le=\"0.001\"} 0\n"));
  CHECK(contains(m.body, "pli_linkd_request_duration_seconds_bucket{le=\"0.0025\"} 1\n"));
  CHECK(contains(m.body, "pli_linkd_request_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
}

TEST_CASE("linkd: header helpers", "[linkd]")
{
  using linkd::content_disposition;
  CHECK(content_disposition("a.pdf") == "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf");
  CHECK(content_disposition("été.pdf") ==
        "attachment; filename=\"__t__.pdf\"; filename*=UTF-8''%C3%A9t%C3%A9.pdf");
  CHECK(content_disposition("../../etc/passwd") ==
        "attachment; filename=\"passwd\"; filename*=UTF-8''passwd");
  auto evil = content_disposition("x\"\r\nSet-Cookie: a=b;.pdf");
  CHECK(evil.find('\r') == std::string::npos);
  CHECK(evil.find('\n') == std::string::npos);
  CHECK(evil.rfind("attachment; filename=\"x_Set-Cookie_ a=b_.pdf\"; filename*=UTF-8''", 0) == 0);
  CHECK(content_disposition("") == "attachment; filename=\"piece-jointe\"; "
                                   "filename*=UTF-8''piece-jointe");

  using linkd::safe_media_type;
  CHECK(safe_media_type("Application/PDF; name=x") == "application/pdf");
  CHECK(safe_media_type("text/html") == "text/html");
  CHECK(safe_media_type("text/html\r\nX: y") == "application/octet-stream");
  CHECK(safe_media_type("nonsense") == "application/octet-stream");
  CHECK(safe_media_type("") == "application/octet-stream");
  CHECK(safe_media_type("a/b/c") == "application/octet-stream");

  CHECK(linkd::header_safe("a\r\nb") == "a  b");

  using linkd::client_address;
  const std::vector<std::string> proxies = {"127.0.0.1"};
  CHECK(client_address("127.0.0.1", "", proxies) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", "198.51.100.1, 203.0.113.9", proxies) == "203.0.113.9");
  CHECK(client_address("192.0.2.1", "203.0.113.9", proxies) == "192.0.2.1");
  CHECK(client_address("127.0.0.1", "not an ip<script>", proxies) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", "2001:db8::1", proxies) == "2001:db8::1");

  CHECK(linkd::classify("GET", "/m/abc") == linkd::Route::landing);
  CHECK(linkd::classify("POST", "/m/abc") == linkd::Route::open);
  CHECK(linkd::classify("POST", "/m/abc/reply") == linkd::Route::reply);
  CHECK(linkd::classify("GET", "/r/abc/a/1") == linkd::Route::reply_download);
  CHECK(linkd::classify("GET", "/x") == linkd::Route::other);
}

TEST_CASE("linkd: the buyer's reply notice", "[linkd]")
{
  linkd::ReplyNoticeInput in;
  in.organisation = "Région \"Exemple\"";
  in.from_address = "pli-bounce@buyer.example";
  in.to = "alice@buyer.example";
  in.replier = "bob@remote.example";
  in.subject = "Objet\r\nBcc: victim@example.org";
  in.sent_at = k_t0;
  in.link = "https://pli.example.org/r/TOKEN";
  in.expires_at = k_t0 + 90 * k_day;
  in.now = k_t0 + k_day;
  in.message_id = "r1.1@buyer.example";
  const std::string fr = linkd::compose_reply_notice(in);
  const std::string headers = fr.substr(0, fr.find("\r\n\r\n"));
  CHECK_FALSE(contains(headers, "\r\nBcc:"));
  CHECK(contains(headers, "\r\nTo: <alice@buyer.example>\r\n"));
  CHECK(contains(headers, "\r\nAuto-Submitted: auto-generated\r\n"));
  CHECK(contains(headers, "Content-Language: fr"));
  auto body = util::base64_decode(fr.substr(fr.find("\r\n\r\n") + 4));
  REQUIRE(body);
  CHECK(contains(*body, "bob@remote.example a répondu à votre courrier"));
  CHECK(contains(*body, "https://pli.example.org/r/TOKEN"));
  in.locale = model::Locale::en;
  in.organisation = "Example \"Region\"";
  const std::string en = linkd::compose_reply_notice(in);
  CHECK(contains(en, "From: \"Example \\\"Region\\\"\" <pli-bounce@buyer.example>\r\n"));
  CHECK(contains(en, "Subject: Reply from bob@remote.example: Objet  Bcc: victim@example.org\r\n"));
  auto en_body = util::base64_decode(en.substr(en.find("\r\n\r\n") + 4));
  REQUIRE(en_body);
  CHECK(contains(*en_body, "bob@remote.example replied to your mail"));
}

TEST_CASE("linkd: a read is Pending until its event is appended; finish gives the page", "[linkd]")
{
  Fixture f;
  Request r;
  r.method = "POST";
  r.path = "/m/" + f.token;
  r.client_ip = "192.0.2.7";
  r.user_agent = "UA/2";
  linkd::Outcome o = f.app->start(r);
  REQUIRE(std::holds_alternative<linkd::Pending>(o));
  auto& p = std::get<linkd::Pending>(o);
  CHECK(p.event.delivery == f.delivery);
  CHECK(p.event.kind == model::EventKind::read);
  CHECK(p.event.detail.at("ip") == "192.0.2.7");
  CHECK(f.count(model::EventKind::read) == 0); // nothing before the caller appends it
  REQUIRE(f.store->append_events({p.event}).ok());
  Response page = p.finish(std::nullopt);
  CHECK(page.status == 200);
  CHECK(contains(page.body, "Accusé de réception enregistré"));
  CHECK(f.count(model::EventKind::read) == 1);
  // An append that failed: no content, 503 (a read after the interval must be recorded).
  f.now += 601 * k_second;
  linkd::Outcome again = f.app->start(r);
  REQUIRE(std::holds_alternative<linkd::Pending>(again));
  Response refused =
      std::get<linkd::Pending>(again).finish(util::Error{store::Errc::invalid, "disk full"});
  CHECK(refused.status == 503);
  CHECK(!contains(refused.body, "Bonjour"));
  // A bad token is answered at once.
  r.path = "/m/tok_unknownunknownunknown";
  CHECK(std::get<Response>(f.app->start(r)).status == 404);
}

TEST_CASE("linkd: a landing page that must record `fetched` is deferred when it may not wait",
          "[linkd]")
{
  Fixture f;
  Request r;
  r.method = "GET";
  r.path = "/m/" + f.token;
  r.client_ip = "192.0.2.1";
  r.may_wait = false;
  Response deferred = f.app->handle(r);
  CHECK(deferred.deferred);
  CHECK(deferred.body.empty());
  CHECK(f.count(model::EventKind::fetched) == 0);
  r.may_wait = true;
  Response page = f.app->handle(r);
  CHECK(!page.deferred);
  CHECK(page.status == 200);
  CHECK(f.count(model::EventKind::fetched) == 1);
  r.may_wait = false; // recorded less than 10 minutes ago: answered at once
  Response again = f.app->handle(r);
  CHECK(!again.deferred);
  CHECK(again.body == page.body);
  CHECK(f.count(model::EventKind::fetched) == 1);
}

TEST_CASE("linkd: the event writer commits the reads pending together; a bad one fails alone",
          "[linkd]")
{
  Fixture f;
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  int done = 0, failed = 0;
  std::string bad_error;
  {
    linkd::EventWriter writer(*f.store);
    auto ev = [&](const std::string& delivery) {
      store::NewEvent e;
      e.delivery = delivery;
      e.kind = model::EventKind::read;
      e.at = k_t0 + 2 * k_second;
      return e;
    };
    // The first batch holds the writer (its callback waits) while the others queue up.
    REQUIRE(writer.submit(ev(f.delivery), [&](const std::optional<util::Error>& error) {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
      ++done;
      failed += error.has_value();
    }));
    while (writer.batches() == 0) { // taken by the writer: the next ones make another batch
      std::this_thread::yield();
    }
    for (int i = 0; i < 30; ++i) {
      const std::string d = i == 17 ? std::string("dunknown000000017") : f.delivery;
      REQUIRE(writer.submit(ev(d), [&, i](const std::optional<util::Error>& error) {
        std::lock_guard lock(mu);
        ++done;
        failed += error.has_value();
        if (i == 17 && error) {
          bad_error = error->message;
        }
        cv.notify_all();
      }));
    }
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done == 31; });
    CHECK(writer.batches() == 2);
  } // stops the writer
  CHECK(failed == 1);
  CHECK(!bad_error.empty());
  CHECK(f.count(model::EventKind::read) == 30);
  CHECK(f.get().read_at() == k_t0 + 2 * k_second);
}

TEST_CASE("linkd: the pages' dates are date::format's, across DST changes and zones", "[linkd]")
{
  for (const char* tz : {"Europe/Paris", "America/Cayenne", "Pacific/Noumea", "UTC", "Nope/Nope"}) {
    const auto* zone = util::valid_timezone(tz) ? date::locate_zone(tz) : date::locate_zone("UTC");
    // every 7 h 13 min 17 s over 2019-2027 (a few thousand instants, DST days included)
    for (util::Micros t = 1546300800LL * k_second; t < 1798761600LL * k_second;
         t += 26000LL * k_second + 17 * k_second) {
      const auto s = date::floor<std::chrono::seconds>(
          date::sys_time<std::chrono::microseconds>(std::chrono::microseconds(t)));
      const auto z = date::make_zoned(zone, s);
      REQUIRE(util::format_human(t, tz) == date::format("%d/%m/%Y - %H:%M:%S", z));
      REQUIRE(util::format_human_short(t, tz) == date::format("%d/%m/%Y %H:%M", z));
    }
  }
}
