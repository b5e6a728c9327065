// policy: buyers, internal domains, trusted networks, sender logins, the buyers' area's door.
#include "core/policy/policy.hpp"

#include <catch2/catch.hpp>

#include <string>

namespace policy = pli::policy;

namespace {

pli::config::Config make_config()
{
  pli::config::Config c;
  c.policy.buyers = {"*@marches.example.org", "achat-*@example.org"};
  c.policy.internal_domains = {"example.org", "xn--mairie-t-h1ab.fr"};
  c.policy.trusted_networks = {*pli::util::Cidr::parse("192.0.2.0/24"),
                               *pli::util::Cidr::parse("2001:db8::/32")};
  c.policy.sender_logins = {{"alice", {"alice@marches.example.org", "team-*@marches.example.org"}},
                            {"*", {"shared@marches.example.org"}}};
  c.buyers_area.admins = {"root@other.example"};
  return c;
}

} // namespace

TEST_CASE("policy: buyers are the senders matching a glob, in any case", "[policy]")
{
  const auto c = make_config();
  struct Row
  {
    const char* address;
    bool buyer;
  };
  for (const Row& row :
       {Row{"bob@marches.example.org", true}, Row{"BOB@Marches.Example.ORG", true},
        Row{"achat-1@example.org", true}, Row{"achat@example.org", false},
        Row{"bob@example.org", false}, Row{"bob@sub.marches.example.org", false}, Row{"", false}}) {
    INFO(row.address);
    CHECK(policy::is_buyer(c.policy, row.address) == row.buyer);
  }
}

TEST_CASE("policy: internal recipients are in an internal domain or below it, U- or A-labels",
          "[policy]")
{
  const auto c = make_config();
  struct Row
  {
    const char* address;
    bool internal;
  };
  for (const Row& row :
       {Row{"a@example.org", true}, Row{"a@EXAMPLE.org", true}, Row{"a@mairie.example.org", true},
        Row{"a@badexample.org", false}, Row{"a@example.org.evil", false},
        Row{"a@mairie-été.fr", true}, Row{"a@xn--mairie-t-h1ab.fr", true},
        Row{"a@services.mairie-été.fr", true}, Row{"a@other.fr", false}, Row{"no-domain", false}}) {
    INFO(row.address);
    CHECK(policy::is_internal(c.policy, row.address) == row.internal);
  }
}

TEST_CASE("policy: trusted clients are in a trusted network", "[policy]")
{
  const auto c = make_config();
  CHECK(policy::is_trusted_client(c.policy, "192.0.2.44"));
  CHECK(policy::is_trusted_client(c.policy, "2001:db8::1"));
  CHECK_FALSE(policy::is_trusted_client(c.policy, "192.0.3.1"));
  CHECK_FALSE(policy::is_trusted_client(c.policy, "2001:db9::1"));
  CHECK_FALSE(policy::is_trusted_client(c.policy, ""));
  CHECK_FALSE(policy::is_trusted_client(c.policy, "not an address"));
  pli::config::Config none;
  CHECK_FALSE(policy::is_trusted_client(none.policy, "127.0.0.1"));
}

TEST_CASE("policy: a login owns itself, its sender_logins globs and those of '*'", "[policy]")
{
  const auto c = make_config();
  CHECK(policy::login_owns(c.policy, "bob@marches.example.org", "Bob@Marches.example.org"));
  CHECK(policy::login_owns(c.policy, "ALICE", "alice@marches.example.org"));
  CHECK(policy::login_owns(c.policy, "alice", "team-7@marches.example.org"));
  CHECK(policy::login_owns(c.policy, "alice", "shared@marches.example.org"));
  CHECK(policy::login_owns(c.policy, "carol", "shared@marches.example.org"));
  CHECK_FALSE(policy::login_owns(c.policy, "carol", "alice@marches.example.org"));
  CHECK_FALSE(policy::login_owns(c.policy, "bob", "bob@marches.example.org"));
}

TEST_CASE("policy: the buyers' area is for admins and buyers", "[policy]")
{
  const auto c = make_config();
  CHECK(policy::may_log_in(c, "root@other.example"));
  CHECK(policy::may_log_in(c, "x@MARCHES.example.org"));
  CHECK_FALSE(policy::may_log_in(c, "ROOT@other.example")); // admins are compared exactly
  CHECK_FALSE(policy::may_log_in(c, "x@other.example"));
}
