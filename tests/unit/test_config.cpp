// Config loading: every error names the file and the line, and the program exits 78.
#include "core/config/config.hpp"

#include <catch2/catch.hpp>

using pli::config::load_from_string;

namespace {

const char* k_minimal = R"(organisation: { name: "Région Exemple" }
store: { path: /var/lib/pli }
milter: { socket: "unix:/var/spool/postfix/pli/milter.sock" }
policy:
  buyers: ["*@marches.example.org"]
bounce: { address: "pli-bounce@example.org" }
linkd: { public_url: "https://pli.example.org/" }
)";

} // namespace

TEST_CASE("a minimal config loads with the documented defaults", "[config]")
{
  auto c = load_from_string(k_minimal, "pli.yaml");
  REQUIRE(c.ok());
  CHECK(c->organisation.name == "Région Exemple");
  CHECK(c->organisation.locale == pli::model::Locale::fr);
  CHECK(c->organisation.timezone == "Europe/Paris");
  CHECK(c->policy.default_mode == pli::model::Mode::ar);
  CHECK(c->policy.default_type == pli::model::MessageType::libre);
  CHECK(c->reinject.host == "127.0.0.1");
  CHECK(c->reinject.port == 10025);
  CHECK(c->bounce.local_part == "pli-bounce");
  CHECK(c->bounce.domain == "example.org");
  CHECK(c->linkd.public_url == "https://pli.example.org");
  CHECK(c->linkd.link_validity_days == 90);
}

TEST_CASE("config errors carry FILE:LINE and say what is wrong", "[config]")
{
  struct Row
  {
    std::string yaml;
    std::string expected; // the beginning of the error message
  };
  const std::string base = k_minimal;
  const std::vector<Row> rows = {
      {base + "colour: blue\n", "pli.yaml:8: unknown key 'colour'"},
      {base + "reinject: { port: 25, hots: x }\n", "pli.yaml:8: unknown key 'reinject.hots'"},
      {base + "reinject:\n  port: seventy\n", "pli.yaml:9: reinject.port: must be a whole number"},
      {base + "reinject:\n  port: 70000\n",
       "pli.yaml:9: reinject.port: must be between 1 and 65535"},
      {base + "policy_extra: 1\n", "pli.yaml:8: unknown key 'policy_extra'"},
      {"organisation: { name: x }\n", "pli.yaml:1: missing required key 'store.path'"},
      {"store: { path: /x }\norganisation: { name: x, timezone: Mars/Olympus }\n",
       "pli.yaml:2: organisation.timezone: 'Mars/Olympus' is not a time zone"},
      {"organisation: [1, 2]\n", "pli.yaml:1: 'organisation' must be a mapping"},
      {"organisation: { name: x }\norganisation: { name: y }\n", "pli.yaml:"},
      {"store: { path: /x\n", "pli.yaml:"},
      {"- a\n- b\n", "pli.yaml:1: the file must be a YAML mapping"},
  };
  for (const auto& row : rows) {
    auto c = load_from_string(row.yaml, "pli.yaml");
    INFO(row.yaml);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == pli::config::Errc::invalid);
    CHECK_THAT(c.error().message, Catch::StartsWith(row.expected));
  }
}

TEST_CASE("wrong types and bad values are reported per key", "[config]")
{
  const std::string base = k_minimal;
  struct Row
  {
    std::string extra;
    std::string expected;
  };
  const std::vector<Row> rows = {
      {"policy2: x\n", "unknown key 'policy2'"},
      {"bounce2: x\n", "unknown key 'bounce2'"},
  };
  for (const auto& row : rows) {
    auto c = load_from_string(base + row.extra, "f.yaml");
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(c.error().message, Catch::Contains(row.expected));
  }
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = base;
    s.replace(s.find(from), from.size(), to);
    return load_from_string(s, "f.yaml");
  };
  auto c1 = replace("buyers: [\"*@marches.example.org\"]", "buyers: \"*@marches.example.org\"");
  REQUIRE_FALSE(c1.ok());
  CHECK_THAT(c1.error().message, Catch::StartsWith("f.yaml:5: policy.buyers: must be a list"));
  auto c2 = replace("pli-bounce@example.org", "pli-bounce+x@example.org");
  REQUIRE_FALSE(c2.ok());
  CHECK_THAT(c2.error().message, Catch::StartsWith("f.yaml:6: bounce.address:"));
  auto c3 = replace("https://pli.example.org/", "pli.example.org");
  REQUIRE_FALSE(c3.ok());
  CHECK_THAT(c3.error().message, Catch::StartsWith("f.yaml:7: linkd.public_url:"));
  auto c4 = replace("unix:/var/spool/postfix/pli/milter.sock", "tcp:1234");
  REQUIRE_FALSE(c4.ok());
  CHECK_THAT(c4.error().message, Catch::StartsWith("f.yaml:3: milter.socket:"));
  auto c5 = load_from_string(base + "policy_x: 1\n", "f.yaml");
  REQUIRE_FALSE(c5.ok());
  auto c6 = load_from_string(base + "linkd2: {}\n", "f.yaml");
  REQUIRE_FALSE(c6.ok());
  auto c7 = load_from_string(std::string(k_minimal) + "bounce_keep: yes\n", "f.yaml");
  REQUIRE_FALSE(c7.ok());
}

TEST_CASE("a missing file is a config error", "[config]")
{
  auto c = pli::config::load("/nonexistent/pli.yaml");
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().code == pli::config::Errc::unreadable);
  CHECK_THAT(c.error().message, Catch::StartsWith("/nonexistent/pli.yaml:"));
}

TEST_CASE("the annotated conf/pli.yaml is a valid config", "[config]")
{
  auto c = pli::config::load(std::string(PLI_SOURCE_DIR) + "/conf/pli.yaml");
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  CHECK(c->milter.socket == "unix:/var/spool/postfix/pli/milter.sock");
  CHECK(c->bounce.address == "pli-bounce@example.org");
}

TEST_CASE("buyers_area: teams and admins, lower-cased; bad entries are errors", "[config]")
{
  const std::string base = k_minimal;
  auto c = load_from_string(
      base + "buyers_area:\n  teams: { marches: [\"A@x.org\", \"b@x.org\"], dsi: [] }\n"
             "  admins: [\"Root@x.org\"]\n  session_hours: 2\n",
      "f.yaml");
  INFO((c.ok() ? std::string() : c.error().message));
  REQUIRE(c.ok());
  REQUIRE(c->buyers_area.teams.size() == 2);
  CHECK(c->buyers_area.teams.at("marches") == std::vector<std::string>{"a@x.org", "b@x.org"});
  CHECK(c->buyers_area.admins == std::vector<std::string>{"root@x.org"});
  CHECK(c->buyers_area.session_hours == 2);
  CHECK(c->buyers_area.login_link_minutes == 15);
  auto bad1 = load_from_string(base + "buyers_area: { teams: [\"a@x.org\"] }\n", "f.yaml");
  REQUIRE_FALSE(bad1.ok());
  CHECK_THAT(bad1.error().message, Catch::StartsWith("f.yaml:8: buyers_area.teams: must be a "
                                                     "mapping"));
  auto bad2 = load_from_string(base + "buyers_area: { teams: { t: [\"nobody\"] } }\n", "f.yaml");
  REQUIRE_FALSE(bad2.ok());
  CHECK_THAT(bad2.error().message, Catch::Contains("team t: 'nobody' is not an address"));
  auto bad3 = load_from_string(base + "buyers_area: { teams: { t: \"a@x.org\" } }\n", "f.yaml");
  REQUIRE_FALSE(bad3.ok());
  auto bad4 = load_from_string(base + "buyers_area: { admin: [] }\n", "f.yaml");
  REQUIRE_FALSE(bad4.ok());
  CHECK_THAT(bad4.error().message, Catch::Contains("unknown key 'buyers_area.admin'"));
}

TEST_CASE("networks: every form is parsed or refused, host bits refused", "[config][cidr]")
{
  using pli::util::Cidr;
  struct Good
  {
    std::string text, canonical, inside, outside;
  };
  const std::vector<Good> good = {
      {"10.0.0.0/8", "10.0.0.0/8", "10.255.1.2", "11.0.0.1"},
      {"192.0.2.7", "192.0.2.7/32", "192.0.2.7", "192.0.2.8"},
      {"192.0.2.128/25", "192.0.2.128/25", "192.0.2.200", "192.0.2.127"},
      {"0.0.0.0/0", "0.0.0.0/0", "203.0.113.1", "2001:db8::1"},
      {"2001:db8::/32", "2001:db8::/32", "2001:db8:ffff::1", "2001:db9::1"},
      {"::1", "::1/128", "::1", "::2"},
      {"2001:db8:0:0:8000::/65", "2001:db8:0:0:8000::/65", "2001:db8::8000:0:0:1", "2001:db8::1"},
      // An IPv4 client on a dual-stack socket (::ffff:a.b.c.d) matches an IPv4 network.
      {"127.0.0.0/8", "127.0.0.0/8", "::ffff:127.0.0.1", "::ffff:128.0.0.1"},
  };
  for (const auto& g : good) {
    INFO(g.text);
    auto c = Cidr::parse(g.text);
    REQUIRE(c.ok());
    CHECK(c->str() == g.canonical);
    CHECK(c->contains(g.inside));
    CHECK_FALSE(c->contains(g.outside));
    CHECK_FALSE(c->contains("not an address"));
  }
  struct Bad
  {
    std::string text, reason;
  };
  const std::vector<Bad> bad = {
      {"10.0.0.0/x", "prefix length"},
      {"10.0.0.0/33", "0 to 32"},
      {"10.0.0.0/", "prefix length"},
      {"/8", "ADDRESS/PREFIX"},
      {"1.2.3/8", "ADDRESS/PREFIX"},
      {"::1/129", "0 to 128"},
      {"10.0.0.0/-1", "prefix length"},
      {"10.0.0.0/+8", "prefix length"},
      {"10.0.0.0/08x", "prefix length"},
      {"10.0.0.0/0008", "prefix length"},
      {"10.0.0.1/8", "did you mean 10.0.0.0/8?"},
      {"2001:db8::1/32", "did you mean 2001:db8::/32?"},
      {"", "ADDRESS/PREFIX"},
      {"10.0.0.0 /8", "ADDRESS/PREFIX"},
      {"example.org/24", "ADDRESS/PREFIX"},
      {"::ffff:10.0.0.0/104", "ADDRESS/PREFIX"},
      {"256.0.0.0/8", "ADDRESS/PREFIX"},
  };
  for (const auto& b : bad) {
    INFO(b.text);
    auto c = Cidr::parse(b.text);
    REQUIRE_FALSE(c.ok());
    CHECK_THAT(c.error().message, Catch::StartsWith("'" + b.text + "' is not a network: "));
    CHECK_THAT(c.error().message, Catch::Contains(b.reason));
  }
}

TEST_CASE("policy.trusted_networks: a bad network is an error at its own line", "[config][cidr]")
{
  // Flow list: the line of the list.
  auto flow = load_from_string(
      std::string(k_minimal).replace(std::string(k_minimal).find("  buyers:"), 0,
                                     "  trusted_networks: [\"127.0.0.0/8\", \"10.0.0.0/x\"]\n"),
      "f.yaml");
  REQUIRE_FALSE(flow.ok());
  CHECK(flow.error().code == pli::config::Errc::invalid);
  CHECK(flow.error().message ==
        "f.yaml:5: policy.trusted_networks: '10.0.0.0/x' is not a network: the prefix length "
        "after '/' must be a number from 0 to 32");
  // Block list: the line of the bad item.
  auto block = load_from_string(
      std::string(k_minimal).replace(std::string(k_minimal).find("  buyers:"), 0,
                                     "  trusted_networks:\n    - 127.0.0.0/8\n    - ::1\n"
                                     "    - 192.0.2.1/24\n"),
      "f.yaml");
  REQUIRE_FALSE(block.ok());
  CHECK_THAT(block.error().message,
             Catch::StartsWith("f.yaml:8: policy.trusted_networks: '192.0.2.1/24' is not a "
                               "network: the address has bits set beyond the prefix"));
  auto fine = load_from_string(
      std::string(k_minimal).replace(std::string(k_minimal).find("  buyers:"), 0,
                                     "  trusted_networks: [\"127.0.0.0/8\", \"2001:db8::/32\"]\n"),
      "f.yaml");
  REQUIRE(fine.ok());
  REQUIRE(fine->policy.trusted_networks.size() == 2);
  CHECK(fine->policy.trusted_networks[1].str() == "2001:db8::/32");
}

TEST_CASE("milter.socket: an inet socket beyond loopback needs milter.allow_remote_inet",
          "[config]")
{
  const std::string base = k_minimal;
  const std::string unix_socket = "unix:/var/spool/postfix/pli/milter.sock";
  auto with = [&](const std::string& socket, const std::string& extra) {
    std::string s = base;
    s.replace(s.find(unix_socket), unix_socket.size(), socket);
    return load_from_string(s + extra, "f.yaml");
  };
  for (const char* local : {"inet:8891@127.0.0.1", "inet:8891@127.1.2.3", "inet:8891@localhost",
                            "inet6:8891@::1", "inet6:8891@[::1]"}) {
    INFO(local);
    CHECK(with(local, "").ok());
  }
  for (const char* remote : {"inet:8891@0.0.0.0", "inet:8891@192.0.2.10",
                             "inet:8891@mail.example.org", "inet6:8891@::"}) {
    INFO(remote);
    auto c = with(remote, "");
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == pli::config::Errc::invalid);
    CHECK_THAT(c.error().message,
               Catch::StartsWith(std::string("f.yaml:3: milter.socket: '") + remote +
                                 "' lets any host that reaches it speak the milter protocol"));
    auto c2 =
        load_from_string(std::string(base)
                             .replace(base.find(unix_socket), unix_socket.size(), remote)
                             .replace(base.find("milter: {") + 9, 0, " allow_remote_inet: true,"),
                         "f.yaml");
    INFO((c2.ok() ? std::string() : c2.error().message));
    CHECK(c2.ok());
  }
}

TEST_CASE("store: lmdb by default; postgresql needs a url without a password", "[config]")
{
  using Backend = pli::config::Config::StoreBackend;
  const std::string rest = std::string(k_minimal).substr(std::string(k_minimal).find("milter:"));
  const std::string head = "organisation: { name: x }\n"; // line 1; the store is at line 2
  auto with_store = [&](const std::string& store) {
    return load_from_string(head + "store: " + store + "\n" + rest, "f.yaml");
  };

  auto lmdb = with_store("{ path: /var/lib/pli }");
  REQUIRE(lmdb.ok());
  CHECK(lmdb->store.backend == Backend::lmdb);
  CHECK(lmdb->store.pool == 8);
  CHECK(lmdb->store.url.empty());
  CHECK(lmdb->store.passfile.empty());

  for (const char* url : {"postgresql://pli_milter@db.example.org/pli?sslmode=verify-full",
                          "postgres://db.example.org/pli", "host=/tmp/pg dbname=pli user=pli_linkd",
                          "postgresql://pli_milter@db.example.org/pli?passfile=/etc/pli/pgpass"}) {
    INFO(url);
    auto pg = with_store(std::string("{ backend: postgresql, path: /var/lib/pli, url: \"") + url +
                         "\", pool: 3, passfile: /etc/pli/pgpass }");
    INFO((pg.ok() ? std::string() : pg.error().message));
    REQUIRE(pg.ok());
    CHECK(pg->store.backend == Backend::postgresql);
    CHECK(pg->store.url == url);
    CHECK(pg->store.pool == 3);
    CHECK(pg->store.passfile == "/etc/pli/pgpass");
  }

  struct Row
  {
    std::string store;
    std::string expected; // the beginning of the error message
  };
  const std::vector<Row> rows = {
      {"{ backend: mysql, path: /x }",
       "f.yaml:2: store.backend: 'mysql' is not a store backend (lmdb, postgresql)"},
      {"{ backend: postgresql, path: /x }", "f.yaml:2: store.backend: postgresql needs store.url"},
      {"{ backend: postgresql, url: \"postgresql://h/pli\" }",
       "f.yaml:2: missing required key 'store.path'"},
      {"{ backend: postgresql, path: /x, url: \"db.example.org\" }",
       "f.yaml:2: store.url: is not a libpq connection URI"},
      {"{ backend: postgresql, path: /x, url: \"postgresql://pli:s3cret@db.example.org/pli\" }",
       "f.yaml:2: store.url: must not hold a password"},
      {"{ backend: postgresql, path: /x, url: \"postgres://pli:@db/pli\" }",
       "f.yaml:2: store.url: must not hold a password"},
      {"{ backend: postgresql, path: /x, url: \"postgresql://db/pli?sslmode=require&password=x\" }",
       "f.yaml:2: store.url: must not hold a password"},
      {"{ backend: postgresql, path: /x, url: \"host=db PassWord = x dbname=pli\" }",
       "f.yaml:2: store.url: must not hold a password"},
      {"{ backend: postgresql, path: /x, url: \"password=x host=db\" }",
       "f.yaml:2: store.url: must not hold a password"},
      {"{ backend: postgresql, path: /x, url: \"postgresql://h/pli\", pool: 0 }",
       "f.yaml:2: store.pool: must be between 1 and 1000"},
      {"{ backend: postgresql, path: /x, url: \"postgresql://h/pli\", passfile: \"\" }",
       "f.yaml:2: store.passfile: must not be empty"},
  };
  for (const auto& row : rows) {
    auto c = with_store(row.store);
    INFO(row.store);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == pli::config::Errc::invalid);
    CHECK_THAT(c.error().message, Catch::StartsWith(row.expected));
    CHECK_THAT(c.error().message, !Catch::Contains("s3cret"));
  }
}
