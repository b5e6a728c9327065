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
    CHECK(c.error().code == 78);
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
  CHECK(c.error().code == 78);
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
