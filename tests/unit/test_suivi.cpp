// The buyers' area (linkd/suivi) through App::handle over a real LMDB store, with the clock
// injected: login links used once and refused once expired, sessions that expire, CSRF,
// rights from teams and admins; and the store's credentials (hashed keys, take, cleanup).
#include "core/config/config.hpp"
#include "core/linkd/app.hpp"
#include "core/linkd/suivi.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/store_backends.hpp"
#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

using namespace pli;
using linkd::App;
using linkd::BuyersArea;
using linkd::Request;
using linkd::Response;

namespace {

constexpr util::Micros k_minute = 60LL * 1000000LL;
constexpr util::Micros k_t0 = 1656685605LL * 1000000LL;

config::Config make_config(const std::string& store)
{
  auto c = config::load_from_string(
      "organisation: { name: \"Région\" }\n"
      "store: { path: " +
          store +
          " }\n"
          "milter: { socket: \"unix:/tmp/x.sock\" }\n"
          "policy: { buyers: [\"*@buyer.example\"] }\n"
          "bounce: { address: \"pli-bounce@buyer.example\" }\n"
          "linkd: { public_url: \"https://pli.example.org\" }\n"
          "buyers_area: { teams: { t1: [\"a@buyer.example\", \"b@buyer.example\"], t2: "
          "[\"b@buyer.example\", \"c@buyer.example\"] }, admins: [\"root@other.example\"] }\n",
      "t.yaml");
  REQUIRE(c.ok());
  return c.value();
}

std::string header(const Response& r, const std::string& name)
{
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

} // namespace

TEST_CASE("suivi: rights from teams and admins", "[linkd][suivi]")
{
  pli::test::TempDir dir;
  auto config = make_config((dir.path / "s").string());
  auto a = BuyersArea::rights(config, "a@buyer.example");
  CHECK(a.senders == std::vector<std::string>{"a@buyer.example", "b@buyer.example"});
  CHECK_FALSE(a.admin);
  auto b = BuyersArea::rights(config, "b@buyer.example");
  CHECK(b.senders ==
        std::vector<std::string>{"a@buyer.example", "b@buyer.example", "c@buyer.example"});
  auto d = BuyersArea::rights(config, "d@buyer.example");
  CHECK(d.senders == std::vector<std::string>{"d@buyer.example"});
  auto root = BuyersArea::rights(config, "root@other.example");
  CHECK(root.admin);
  CHECK(root.senders.empty());
  CHECK(BuyersArea::may_log_in(config, "root@other.example"));
  CHECK(BuyersArea::may_log_in(config, "x@BUYER.example"));
  CHECK_FALSE(BuyersArea::may_log_in(config, "x@other.example"));
}

TEST_CASE("suivi: a login link works once, not after it expires; sessions expire", "[linkd][suivi]")
{
  pli::test::TempDir dir;
  auto config = make_config((dir.path / "s").string());
  auto opened = store::open_lmdb({(dir.path / "s").string(), 64, false});
  REQUIRE(opened.ok());
  auto& st = *opened.value();
  util::Micros now = k_t0;
  App app(config, st, [&] { return now; });
  auto link = [&](const std::string& token) {
    store::pb::Credential c;
    c.set_kind(1);
    c.set_address("a@buyer.example");
    c.set_created_at(now);
    c.set_expires_at(now + 15 * k_minute);
    REQUIRE(st.put_credential("L" + util::sha256_hex(token), c, now).ok());
  };
  const std::string csrf = "csrf_0123456789abcdefghij";
  auto post_login = [&](const std::string& token, const std::string& form_csrf) {
    Request r;
    r.method = "POST";
    r.path = "/suivi/login";
    r.client_ip = "192.0.2.1";
    r.cookie = "pli_csrf=" + csrf;
    r.form = {{"token", token}, {"csrf", form_csrf}};
    return app.handle(r);
  };
  const std::string t1 = "link_one_0123456789abcdef";
  link(t1);
  CHECK(post_login(t1, "wrong_csrf_0123456789abc").status == 403);
  CHECK(post_login(t1, "").status == 403);
  now += 10 * k_minute;
  Response ok = post_login(t1, csrf);
  REQUIRE(ok.status == 303);
  const std::string cookie = header(ok, "Set-Cookie");
  CHECK(cookie.find("HttpOnly") != std::string::npos);
  CHECK(cookie.find("SameSite=Strict") != std::string::npos);
  CHECK(cookie.find("Secure") != std::string::npos); // public_url is https
  CHECK(cookie.find("Max-Age=28800") != std::string::npos);
  CHECK(post_login(t1, csrf).status == 410); // used up

  const std::string t2 = "link_two_0123456789abcdef";
  link(t2);
  now += 15 * k_minute;
  CHECK(post_login(t2, csrf).status == 410); // expired

  const std::string session = cookie.substr(0, cookie.find(';')); // pli_session=...
  Request list;
  list.method = "GET";
  list.path = "/suivi/";
  list.cookie = session;
  now = k_t0 + 10 * k_minute + 8 * 60 * k_minute - k_minute;
  Response in = app.handle(list);
  CHECK(in.status == 200);
  CHECK(in.body.find("a@buyer.example") != std::string::npos);
  CHECK(in.body.find("0 courrier") != std::string::npos);
  now += 2 * k_minute; // past 8 hours
  Response out = app.handle(list);
  CHECK(out.status == 200);
  CHECK(out.body.find("name=\"email\"") != std::string::npos);
}

TEST_CASE("suivi: credentials are taken once; expired ones are cleaned up", "[suivi]")
{
  pli::test::AnyStore where(GENERATE(pli::test::Backend::lmdb, pli::test::Backend::postgresql));
  INFO(where.name());
  auto opened = where.open();
  auto& st = *opened;
  store::pb::Credential c;
  c.set_kind(2);
  c.set_address("a@buyer.example");
  c.set_expires_at(k_t0 + k_minute);
  REQUIRE(st.put_credential("Sone", c, k_t0).ok());
  CHECK(st.put_credential("Sone", c, k_t0).error().code == store::Errc::conflict);
  CHECK(st.get_credential("Sone")->address() == "a@buyer.example");
  c.set_expires_at(k_t0 + 10 * k_minute);
  REQUIRE(st.put_credential("Stwo", c, k_t0 + 2 * k_minute).ok()); // removes "Sone"
  CHECK(st.get_credential("Sone").error().code == store::Errc::not_found);
  CHECK(st.take_credential("Stwo").ok());
  CHECK_FALSE(st.take_credential("Stwo").ok());
  CHECK_FALSE(st.get_credential("Stwo").ok());
}

TEST_CASE("suivi: asking for a login link answers the same, at once, buyer or not",
          "[linkd][suivi]")
{
  pli::test::TempDir dir;
  auto c = config::load_from_string(
      "organisation: { name: \"Région\" }\n"
      "store: { path: " +
          (dir.path / "s").string() +
          " }\n"
          "milter: { socket: \"unix:/tmp/x.sock\" }\n"
          "policy: { buyers: [\"*@buyer.example\"] }\n"
          "bounce: { address: \"pli-bounce@buyer.example\" }\n"
          "reinject: { host: \"127.0.0.1\", port: 1 }\n" // nothing listens: the mail fails
          "linkd: { public_url: \"https://pli.example.org\" }\n",
      "t.yaml");
  REQUIRE(c.ok());
  auto opened = store::open_lmdb({(dir.path / "s").string(), 64, false});
  REQUIRE(opened.ok());
  App app(c.value(), *opened.value(), [] { return k_t0; });
  const std::string csrf = "csrf_0123456789abcdefghij";
  auto ask = [&](const std::string& email, const std::string& ip) {
    Request r;
    r.method = "POST";
    r.path = "/suivi/";
    r.client_ip = ip;
    r.cookie = "pli_csrf=" + csrf;
    r.form = {{"email", email}, {"csrf", csrf}};
    Response resp = app.handle(r);
    auto at = resp.body.find(email);
    REQUIRE(at != std::string::npos); // the page names the address it answers for
    resp.body.replace(at, email.size(), "ADDRESS");
    return resp;
  };
  // The buyer's link is stored and mailed by the mailer thread: the reinjection listener
  // being down changes nothing in the answer (it is logged), and neither does being a buyer.
  Response buyer = ask("anna@buyer.example", "192.0.2.1");
  Response stranger = ask("anna@other.example", "192.0.2.2");
  CHECK(buyer.status == 200);
  CHECK(stranger.status == 200);
  CHECK(buyer.body == stranger.body);
}
