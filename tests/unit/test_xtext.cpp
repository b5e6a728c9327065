// RFC 3461 xtext and RFC 6533 utf-8-addr-xtext: the encoders and decoders of ORCPT, ENVID
// and DSN address fields (core/smtp/xtext.hpp), against the RFCs' rules and examples.
#include "core/smtp/xtext.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pli::smtp;

TEST_CASE("xtext encodes '+', '=', space and bytes outside ! to ~ as +XX (RFC 3461 §4)", "[xtext]")
{
  struct Row
  {
    std::string plain, xtext;
  };
  const Row rows[] = {
      {"jean@example.org", "jean@example.org"},
      {"jean+ao@example.org", "jean+2Bao@example.org"},
      {"a=b@example.org", "a+3Db@example.org"},
      {"\"jean dupont\"@example.org", "\"jean+20dupont\"@example.org"},
      {"{}|~#$&*/?^`@x", "{}|~#$&*/?^`@x"},
      {"\x7f\x01", "+7F+01"},
      {"andr\xc3\xa9", "andr+C3+A9"},
      {"", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.plain);
    CHECK(xtext_encode(r.plain) == r.xtext);
    CHECK(xtext_decode(r.xtext) == r.plain);
  }
}

TEST_CASE("xtext_decode refuses what is not xtext", "[xtext]")
{
  for (const char* bad : {"a+", "a+2", "a+2G", "a b", "a=b", "a\x80"}) {
    CAPTURE(bad);
    CHECK_FALSE(xtext_decode(bad).has_value());
  }
  CHECK(xtext_decode("a+2b") == "a+"); // lower-case hex taken
}

TEST_CASE("utf-8-addr-xtext escapes '\\', '+', '=', controls and non-ASCII as \\x{HEX} "
          "(RFC 6533 §3)",
          "[xtext]")
{
  struct Row
  {
    std::string plain, encoded;
  };
  const Row rows[] = {
      {"andr\xc3\xa9@example.org", "andr\\x{E9}@example.org"},
      {"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
       "\\x{7528}\\x{6237}@\\x{4F8B}\\x{5B50}.\\x{5E7F}\\x{544A}"},
      {"jean+ao@x", "jean\\x{2B}ao@x"},
      {"a=b\\c d@x", "a\\x{3D}b\\x{5C}c\\x{20}d@x"},
      {"\xf0\x9f\x98\x80@x", "\\x{1F600}@x"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.plain);
    CHECK(utf8_addr_xtext_encode(r.plain) == r.encoded);
    CHECK(utf8_addr_xtext_decode(r.encoded) == r.plain);
  }
  // utf-8-addr-unitext: raw UTF-8 kept, escapes decoded.
  CHECK(utf8_addr_xtext_decode("andr\xc3\xa9\\x{2B}x@y") == "andr\xc3\xa9+x@y");
  for (const char* bad : {"a\\x{}", "a\\x{1}", "a\\x{110000}", "a\\x{D800}", "a\\y{41}", "a\\x{41",
                          "a\\x{4G}", "a\\"}) {
    CAPTURE(bad);
    CHECK_FALSE(utf8_addr_xtext_decode(bad).has_value());
  }
}

TEST_CASE("orcpt_value: rfc822 with xtext for ASCII, utf-8 for internationalised", "[xtext]")
{
  CHECK(orcpt_value("jean+ao@example.org") == "rfc822;jean+2Bao@example.org");
  CHECK(orcpt_value("\"a b\"@x") == "rfc822;\"a+20b\"@x");
  CHECK(orcpt_value("andr\xc3\xa9@x") == "utf-8;andr\\x{E9}@x");
}

TEST_CASE("reported_address_matches: as written, ignoring ASCII case, or xtext-decoded", "[xtext]")
{
  CHECK(reported_address_matches("jean+ao@x.example", "jean+ao@x.example"));
  CHECK(reported_address_matches("JEAN+ao@X.example", "jean+ao@x.example"));
  CHECK(reported_address_matches("jean+2Bao@x.example", "jean+ao@x.example"));
  CHECK(reported_address_matches("\"jean+20dupont\"@x", "\"jean dupont\"@x"));
  CHECK(reported_address_matches("andr\xc3\xa9@x", "andr\xc3\xa9@x"));
  CHECK_FALSE(reported_address_matches("jean@x.example", "jean+ao@x.example"));
  CHECK_FALSE(reported_address_matches("", ""));
}

#include "core/smtp/client.hpp"

TEST_CASE("needs_smtputf8: non-ASCII addresses or headers, not an 8-bit body", "[xtext]")
{
  Envelope e;
  e.mail_from = "pli-bounce+d1@example.org";
  e.rcpt = "jean@example.org";
  e.data = "Subject: x\r\n\r\nCorps \xc3\xa9t\xc3\xa9\r\n";
  CHECK_FALSE(needs_smtputf8(e));
  e.rcpt = "andr\xc3\xa9@example.org";
  CHECK(needs_smtputf8(e));
  e.rcpt = "jean@example.org";
  e.data = "To: <andr\xc3\xa9@example.org>\r\n\r\nbody\r\n";
  CHECK(needs_smtputf8(e));
  e.data = "To: <andr\xc3\xa9@example.org>\n\nbody\n";
  CHECK(needs_smtputf8(e));
}
