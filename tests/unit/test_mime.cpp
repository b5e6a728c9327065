// Unit tests for pli::mime: message parsing (bodies, attachments, names, charsets),
// RFC 2047 decoding with the GMime 3.2.13 bug #133 workaround, and a corpus run.
#include "core/mime/charset.hpp"
#include "core/mime/names.hpp"
#include "core/mime/parse.hpp"
#include "core/mime/rfc2047.hpp"

#include <catch2/catch.hpp>
#include <glib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

namespace {

using pli::mime::Attachment;
using pli::mime::ParsedMessage;

const std::string k_empty_sha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

bool valid_utf8(const std::string& s)
{
  return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr) != FALSE;
}

std::string sha256_independent(const std::string& data)
{
  gchar* hex = g_compute_checksum_for_data(
      G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(data.data()), data.size());
  std::string out(hex);
  g_free(hex);
  return out;
}

bool has_warning(const ParsedMessage& m, const std::string& code)
{
  for (const auto& w : m.warnings) {
    if (w == code) {
      return true;
    }
  }
  return false;
}

std::vector<std::string> names_of(const ParsedMessage& m)
{
  std::vector<std::string> names;
  for (const auto& a : m.attachments) {
    names.push_back(a.name);
  }
  return names;
}

// A multipart/mixed message with a text body and the given extra parts (each a
// complete "headers\n\nbody" block).
std::string
mixed_message(const std::vector<std::string>& parts,
              const std::string& headers = "From: Alice <alice@example.org>\nSubject: test\n")
{
  std::string m = headers + "MIME-Version: 1.0\n"
                            "Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\n"
                            "\n"
                            "--BOUNDARY\n"
                            "Content-Type: text/plain; charset=utf-8\n"
                            "\n"
                            "Bonjour.\n";
  for (const auto& p : parts) {
    m += "--BOUNDARY\n" + p + "\n";
  }
  m += "--BOUNDARY--\n";
  return m;
}

std::string named_part(const std::string& header_params)
{
  return "Content-Type: application/octet-stream\n"
         "Content-Disposition: attachment; " +
         header_params +
         "\n"
         "\n"
         "data\n";
}

} // namespace

TEST_CASE("mime: a plain message", "[mime]")
{
  pli::mime::init();
  const auto m =
      pli::mime::parse_message("From: \"Dupont, Jean\" <jean.dupont@example.fr>\r\n"
                               "To: bob@example.com\r\n"
                               "Subject: =?utf-8?Q?Consultation_2022AK=5F014_:_r=C3=A9ponse?=\r\n"
                               "Message-ID: <20240101.abc@example.fr>\r\n"
                               "Date: Mon, 1 Jan 2024 10:00:00 +0100\r\n"
                               "MIME-Version: 1.0\r\n"
                               "Content-Type: text/plain; charset=iso-8859-1\r\n"
                               "Content-Transfer-Encoding: quoted-printable\r\n"
                               "\r\n"
                               "Voici la r=E9ponse.\r\n");
  REQUIRE(m.parsed);
  CHECK(m.subject == "Consultation 2022AK_014 : réponse");
  CHECK(m.from == "\"Dupont, Jean\" <jean.dupont@example.fr>");
  CHECK(m.message_id == "20240101.abc@example.fr");
  CHECK(m.date == "Mon, 1 Jan 2024 10:00:00 +0100");
  CHECK(m.text_body == "Voici la réponse.\r\n");
  CHECK(m.html_body.empty());
  CHECK(m.attachments.empty());
  CHECK(m.warnings.empty());
}

TEST_CASE("mime: multipart/alternative gives both bodies and no attachment", "[mime]")
{
  pli::mime::init();
  const auto m = pli::mime::parse_message("From: a@example.org\n"
                                          "Subject: alt\n"
                                          "Content-Type: multipart/alternative; boundary=b1\n"
                                          "\n"
                                          "--b1\n"
                                          "Content-Type: text/plain; charset=utf-8\n"
                                          "\n"
                                          "plain\n"
                                          "--b1\n"
                                          "Content-Type: text/html; charset=utf-8\n"
                                          "\n"
                                          "<p>html</p>\n"
                                          "--b1\n"
                                          "Content-Type: text/html; charset=utf-8\n"
                                          "\n"
                                          "<p>second html alternative</p>\n"
                                          "--b1--\n");
  REQUIRE(m.parsed);
  CHECK(m.text_body == "plain");
  CHECK(m.html_body == "<p>html</p>");
  CHECK(m.attachments.empty());
}

TEST_CASE("mime: a second multipart/alternative keeps only its preferred version", "[mime]")
{
  pli::mime::init();
  const std::string alt = "Content-Type: multipart/alternative; boundary=ALT\n"
                          "\n"
                          "--ALT\n"
                          "Content-Type: text/plain\n"
                          "\n"
                          "plain\n"
                          "--ALT\n"
                          "Content-Type: text/html\n"
                          "\n"
                          "<p>html</p>\n"
                          "--ALT--\n";
  const auto m = pli::mime::parse_message(
      "Subject: two\nContent-Type: multipart/mixed; boundary=M\n\n--M\n" + alt + "--M\n" + alt +
      "--M\nContent-Type: text/plain\n\nfooter\n--M--\n");
  REQUIRE(m.parsed);
  CHECK(m.text_body == "plain");
  CHECK(m.html_body == "<p>html</p>");
  REQUIRE(m.attachments.size() == 2);
  CHECK(m.attachments[0].name == "piece-jointe-1.html");
  CHECK(m.attachments[0].data == "<p>html</p>");
  CHECK(m.attachments[1].name == "piece-jointe-2.txt");
  CHECK(m.attachments[1].data == "footer");
}

TEST_CASE("mime: mixed message with related HTML, inline image and encoded names", "[mime]")
{
  pli::mime::init();
  const std::string raw =
      "From: =?iso-8859-1?Q?Ren=E9?= <rene@example.fr>\n"
      "Subject: pieces\n"
      "Content-Type: multipart/mixed; boundary=outer\n"
      "\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=alt\n"
      "\n"
      "--alt\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "\n"
      "texte\n"
      "--alt\n"
      "Content-Type: multipart/related; boundary=rel\n"
      "\n"
      "--rel\n"
      "Content-Type: text/html; charset=utf-8\n"
      "\n"
      "<img src=\"cid:logo@x\">\n"
      "--rel\n"
      "Content-Type: image/png\n"
      "Content-ID: <logo@x>\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "iVBORw0KGgo=\n"
      "--rel--\n"
      "--alt--\n"
      "--outer\n"
      "Content-Type: application/pdf\n"
      "Content-Disposition: attachment; filename*=iso-8859-1''r%E9sum%E9.pdf\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "JVBERi0xLjQK\n"
      "--outer\n"
      "Content-Type: application/msword; name=\"=?iso-8859-1?Q?caf=E9_cr=E8me.doc?=\"\n"
      "\n"
      "doc\n"
      "--outer--\n";
  const auto m = pli::mime::parse_message(raw);
  REQUIRE(m.parsed);
  CHECK(m.from == "René <rene@example.fr>");
  CHECK(m.text_body == "texte");
  CHECK(m.html_body == "<img src=\"cid:logo@x\">");
  REQUIRE(m.attachments.size() == 3);

  const Attachment& img = m.attachments[0];
  CHECK(img.name == "piece-jointe-1.png");
  CHECK(img.media_type == "image/png");
  CHECK(img.content_id == "logo@x");
  CHECK(img.data == std::string("\x89PNG\r\n\x1a\n", 8));

  CHECK(m.attachments[1].name == "résumé.pdf");
  CHECK(m.attachments[1].media_type == "application/pdf");
  CHECK(m.attachments[1].data == "%PDF-1.4\n");
  CHECK(m.attachments[2].name == "café crème.doc");
  CHECK(m.attachments[2].media_type == "application/msword");
  for (const auto& a : m.attachments) {
    CHECK(a.sha256_hex == sha256_independent(a.data));
  }
}

TEST_CASE("mime: adjacent base64 encoded words (GMime 3.2.13 bug #133)", "[mime]")
{
  pli::mime::init();
  const std::string words = "=?utf-8?B?w6k=?= =?utf-8?B?w6kudHh0?=";
  const auto m = pli::mime::parse_message(
      mixed_message({"Content-Type: text/plain; name=\"" + words +
                         "\"\n"
                         "Content-Disposition: attachment\n\nx\n",
                     "Content-Type: application/pdf\n"
                     "Content-Disposition: attachment; filename=\"" +
                         words + "\"\n\ny\n"},
                    "Subject: " + words + "\nFrom: " + words + " <e@example.org>\n"));
  REQUIRE(m.parsed);
  CHECK(m.subject == "éé.txt");
  CHECK(m.from == "\"éé.txt\" <e@example.org>"); // quoted: '.' is special in a phrase
  CHECK(names_of(m) == std::vector<std::string>{"éé.txt", "éé (2).txt"});
}

TEST_CASE("mime: decode_header_value", "[mime]")
{
  pli::mime::init();
  struct Case
  {
    std::string raw;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"=?utf-8?B?w6k=?= =?utf-8?B?w6kudHh0?=", "éé.txt"},                // bug #133
      {"=?UTF-8?b?w6k=?=\r\n\t=?utf-8?B?w6k=?= =?utf-8?B?w6k=?=", "ééé"}, // folded, case
      {"=?utf-8?B?w6k=?= =?iso-8859-1?B?6Q==?=", "éé"},                   // charsets differ
      {"=?utf-8?B?w6nDqQ==?=", "éé"},                                     // no bug case
      {"=?iso-8859-1?Q?caf=E9?= au lait", "café au lait"},
      {"=?windows-1252?Q?=93guillemets=94?=", "\u201Cguillemets\u201D"},
      {"  plain text  ", "plain text"},
      {"Re: =?utf-8?Q?r=C3=A9ponse?=", "Re: réponse"},
      {"caf\xE9 raw latin-1", "café raw latin-1"}, // raw 8-bit
      {"d\xC3\xA9j\xC3\xA0 vu", "déjà vu"},        // raw UTF-8
      {"=?x-bogus?Q?caf=E9?=", ""},                // see below
      {"", ""},
  };
  for (const auto& c : cases) {
    const std::string got = pli::mime::decode_header_value(c.raw);
    INFO("raw: " << c.raw << " got: " << got);
    CHECK(valid_utf8(got));
    if (c.raw.find("x-bogus") == std::string::npos) {
      CHECK(got == c.expected);
    } else {
      CHECK(!got.empty()); // unknown charset: some readable, valid text, never nothing
    }
  }
}

TEST_CASE("mime: merge_split_base64_words leaves other text alone", "[mime]")
{
  using pli::mime::merge_split_base64_words;
  CHECK(merge_split_base64_words("=?utf-8?B?w6k=?= =?utf-8?B?w6kudHh0?=") ==
        "=?utf-8?B?w6nDqS50eHQ=?=");
  CHECK(merge_split_base64_words("a =?utf-8?B?w6k=?= =?utf-8?B?w6k=?= b") ==
        "a =?utf-8?B?w6nDqQ==?= b");
  CHECK(merge_split_base64_words("=?utf-8?B?w6nD?= =?utf-8?B?qQ==?=") ==
        "=?utf-8?B?w6nD?= =?utf-8?B?qQ==?=");
  CHECK(merge_split_base64_words("=?utf-8?B?w6k=?= x =?utf-8?B?w6k=?=") ==
        "=?utf-8?B?w6k=?= x =?utf-8?B?w6k=?=");
  CHECK(merge_split_base64_words("=?utf-8?Q?=C3=A9?= =?utf-8?B?w6k=?=") ==
        "=?utf-8?Q?=C3=A9?= =?utf-8?B?w6k=?=");
  CHECK(merge_split_base64_words("no words =? at ?= all") == "no words =? at ?= all");
  CHECK(merge_split_base64_words("=?utf-8?B?w6k=?=") == "=?utf-8?B?w6k=?=");
}

TEST_CASE("mime: hostile attachment names are sanitised", "[mime]")
{
  pli::mime::init();
  struct Case
  {
    std::string params;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"filename*=utf-8''..%2F..%2Fetc%2Fpasswd", "passwd"},
      {"filename*=utf-8''..%2F..%2Fetc%2Fpasswd%0D%0Ax", "passwdx"},
      {"filename*=utf-8''C%3A%5Ctemp%5Ca.exe", "a.exe"},
      {"filename=C:\\temp\\a.exe", "a.exe"},
      {"filename=\"=?utf-8?Q?..=2F..=2Fx.sh?=\"", "x.sh"},
      {"filename=\"/tmp/whoa\"", "whoa"},
      {"filename=\"..\"", "piece-jointe-1.bin"},
      {"filename=\".\"", "piece-jointe-1.bin"},
      {"filename=\"\"", "piece-jointe-1.bin"},
      {"filename=\"dir/\"", "piece-jointe-1.bin"},
      {"filename*=utf-8''invoice%E2%80%AEfdp.exe", "invoicefdp.exe"}, // U+202E RLO
      {"filename*=utf-8''a%09b%7Fc%C2%85d.txt", "abcd.txt"},          // TAB, DEL, C1 NEL
      {"filename=\"report.pdf.  \"", "report.pdf"},
      {"filename*=x-bogus''caf%E9.txt", "café.txt"}, // unknown charset
      {"filename*=''caf%E9.txt", "café.txt"},        // empty charset
  };
  for (const auto& c : cases) {
    const auto m = pli::mime::parse_message(mixed_message({named_part(c.params)}));
    INFO("params: " << c.params);
    REQUIRE(m.attachments.size() == 1);
    CHECK(m.attachments[0].name == c.expected);
    CHECK(valid_utf8(m.attachments[0].name));
  }
}

TEST_CASE("mime: sanitize_file_name and limit_file_name", "[mime]")
{
  using pli::mime::limit_file_name;
  using pli::mime::sanitize_file_name;
  CHECK(sanitize_file_name("a/b\\c.txt") == "c.txt");
  CHECK(sanitize_file_name(" \t..") == "");
  CHECK(sanitize_file_name(std::string("a\0b.txt", 7)) == "ab.txt");
  CHECK(sanitize_file_name("\xE9t\xE9.txt") == "été.txt");
  CHECK(sanitize_file_name(".bashrc") == ".bashrc");
  CHECK(pli::mime::file_name_from_subject("Re: lot 1/2") == "Re: lot 1_2");

  CHECK(limit_file_name("abcdef.pdf", 8) == "abcd.pdf");
  CHECK(limit_file_name("abc.pdf", 8) == "abc.pdf");
  // Never cut inside a character: "é" is 2 bytes.
  CHECK(limit_file_name("ééééé.pdf", 9) == "éé.pdf");
  CHECK(limit_file_name("ééééé.pdf", 10) == "ééé.pdf");
  // An extension too long to keep is cut like the rest.
  CHECK(limit_file_name("abcdef.verylongext", 10) == "abcdef.ver");

  pli::mime::UniqueNames names(12);
  CHECK(names.claim("a.pdf") == "a.pdf");
  CHECK(names.claim("A.PDF") == "A (2).PDF");
  CHECK(names.claim("a.pdf") == "a (3).pdf");
  CHECK(names.claim("abcdefgh.pdf") == "abcdefgh.pdf");
  CHECK(names.claim("abcdefgh.pdf") == "abcd (2).pdf");
}

TEST_CASE("mime: long names are capped at a character boundary, keeping the extension", "[mime]")
{
  pli::mime::init();
  std::string long_name;
  for (int i = 0; i < 150; ++i) {
    long_name += "\xC3\xA9"; // é
  }
  pli::mime::Limits limits;
  limits.max_name_bytes = 101;
  const auto m = pli::mime::parse_message(
      mixed_message({named_part("filename=\"" + long_name + ".pdf\"")}), limits);
  REQUIRE(m.attachments.size() == 1);
  const std::string& name = m.attachments[0].name;
  CHECK(name.size() <= 101);
  CHECK(name.size() == 100); // 48 é + ".pdf"
  CHECK(valid_utf8(name));
  CHECK(name.substr(name.size() - 4) == ".pdf");
}

TEST_CASE("mime: duplicate names are made unique", "[mime]")
{
  pli::mime::init();
  const auto m = pli::mime::parse_message(mixed_message({
      named_part("filename=\"devis.pdf\""),
      named_part("filename=\"devis.pdf\""),
      named_part("filename=\"DEVIS.pdf\""),
      named_part("filename=\"devis (2).pdf\""),
      named_part("filename=\"noext\""),
      named_part("filename=\"noext\""),
  }));
  CHECK(names_of(m) == std::vector<std::string>{"devis.pdf", "devis (2).pdf", "DEVIS (3).pdf",
                                                "devis (2) (2).pdf", "noext", "noext (2)"});
}

TEST_CASE("mime: text bodies are always valid UTF-8", "[mime]")
{
  pli::mime::init();
  struct Case
  {
    std::string content_type;
    std::string body;
    std::string expected;
    bool fallback;
  };
  const std::vector<Case> cases = {
      {"text/plain", "caf\xE9 cr\xE8me", "café crème", true}, // no charset, Latin-1
      {"text/plain", "caf\xC3\xA9", "café", false},           // no charset, UTF-8
      {"text/plain; charset=utf-8", "caf\xE9", "café", true}, // GMime would drop it
      {"text/plain; charset=utf-8", "d\xC3\xA9j\xC3\xA0 \x93ok\x94", "déjà \u201Cok\u201D", true},
      {"text/plain; charset=us-ascii", "caf\xE9", "café", true},
      {"text/plain; charset=iso-8859-1",
       "\x93"
       "caf\xE9\x94",
       "\u201Ccafé\u201D", false},
      {"text/plain; charset=iso-8859-15", "\xA4", "€", false},
      {"text/plain; charset=x-unknown-cs", "caf\xE9", "café", true},
      {"text/plain; charset=x-unknown-cs", "plain", "plain", false},
      {"text/plain; charset=iso-2022-jp", "\x1B$B$3$s$K$A$O\x1B(B", "こんにちは", false},
      {"text/plain; charset=shift_jis", "\x82\xA0\xFF", "あÿ", true},          // 0xFF invalid
      {"text/plain; charset=utf-8", std::string("a\0b", 3), "a\uFFFDb", true}, // NUL
  };
  for (const auto& c : cases) {
    const auto m = pli::mime::parse_message("Subject: t\nContent-Type: " + c.content_type +
                                            "\nContent-Transfer-Encoding: 8bit\n\n" + c.body);
    INFO("content-type: " << c.content_type);
    REQUIRE(m.parsed);
    CHECK(m.text_body == c.expected);
    CHECK(valid_utf8(m.text_body));
    CHECK(has_warning(m, "charset_fallback") == c.fallback);
  }
}

TEST_CASE("mime: to_utf8 and windows1252_to_utf8", "[mime]")
{
  using pli::mime::to_utf8;
  CHECK(pli::mime::windows1252_to_utf8("\x80\x81\x9F\xA0\xFF") == "€\u0081Ÿ\u00A0ÿ");
  CHECK(pli::mime::repair_utf8("ok \xC3\xA9 \xE9 \xC3") == "ok é é Ã");
  CHECK(to_utf8("\xE9", "ISO-8859-1") == "é");
  CHECK(to_utf8("+AOk-", "unicode-1-1-utf-7") == "é");
  CHECK(to_utf8("\xC7\xD1", "ks_c_5601-1987") == "한");
  bool fell_back = false;
  CHECK(to_utf8("\xE9", "koi8-r", &fell_back) == "И");
  CHECK_FALSE(fell_back);
}

TEST_CASE("mime: a forwarded message/rfc822 is one attachment", "[mime]")
{
  pli::mime::init();
  const std::string inner = "From: Bob <bob@example.com>\n"
                            "Subject: =?utf-8?Q?Devis_n=C2=B02_/_lot_3?=\n"
                            "Content-Type: multipart/mixed; boundary=inner\n"
                            "\n"
                            "--inner\n"
                            "Content-Type: text/plain\n"
                            "\n"
                            "inner body\n"
                            "--inner\n"
                            "Content-Type: application/pdf; name=inner.pdf\n"
                            "\n"
                            "pdf\n"
                            "--inner--\n";
  const auto m =
      pli::mime::parse_message(mixed_message({"Content-Type: message/rfc822\n\n" + inner,
                                              "Content-Type: message/rfc822\n"
                                              "Content-Disposition: attachment; filename=fwd.eml\n"
                                              "\n"
                                              "Subject: second\n\nbody\n"}));
  REQUIRE(m.parsed);
  CHECK(m.text_body == "Bonjour.");
  REQUIRE(m.attachments.size() == 2);
  const Attachment& a = m.attachments[0];
  CHECK(a.name == "Devis n°2 _ lot 3.eml");
  CHECK(a.media_type == "message/rfc822");
  CHECK(a.data.find("Subject: =?utf-8?Q?Devis_n=C2=B02_/_lot_3?=") != std::string::npos);
  CHECK(a.data.find("inner body") != std::string::npos);
  CHECK(a.sha256_hex == sha256_independent(a.data));
  CHECK(m.attachments[1].name == "fwd.eml");

  // A base64-encoded message/rfc822 is a plain part in GMime; it is named the same way.
  const auto b = pli::mime::parse_message(
      mixed_message({"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
                     "U3ViamVjdDogZW5jb2RlZA0KDQpib2R5DQo=\n"}));
  REQUIRE(b.attachments.size() == 1);
  CHECK(b.attachments[0].name == "encoded.eml");
  CHECK(b.attachments[0].data == "Subject: encoded\r\n\r\nbody\r\n");
}

TEST_CASE("mime: parts without content", "[mime]")
{
  pli::mime::init();
  const auto m = pli::mime::parse_message(mixed_message({
      "Content-Type: application/pdf; name=empty.pdf\n",
      "Content-Type: application/octet-stream\n",
  }));
  REQUIRE(m.parsed);
  CHECK(m.text_body == "Bonjour.");
  REQUIRE(m.attachments.size() == 1);
  CHECK(m.attachments[0].name == "empty.pdf");
  CHECK(m.attachments[0].data.empty());
  CHECK(m.attachments[0].sha256_hex == k_empty_sha256);

  const auto no_body = pli::mime::parse_message("Subject: nothing\nContent-Type: text/plain\n\n");
  REQUIRE(no_body.parsed);
  CHECK(no_body.text_body.empty());
  CHECK(no_body.attachments.empty());

  const auto empty_multipart = pli::mime::parse_message(
      "Subject: x\nContent-Type: multipart/mixed; boundary=zz\n\nonly a preamble\n");
  REQUIRE(empty_multipart.parsed);
  CHECK(empty_multipart.attachments.empty());
  CHECK(has_warning(empty_multipart, "multipart_without_parts"));
}

TEST_CASE("mime: garbage and empty input", "[mime]")
{
  pli::mime::init();
  CHECK_FALSE(pli::mime::parse_message("").parsed);
  CHECK_FALSE(pli::mime::parse_message("this is not a header line\nnor this\n").parsed);
  std::string binary;
  for (int i = 0; i < 4096; ++i) {
    binary.push_back(static_cast<char>((i * 7919 + 13) % 256));
  }
  const auto m = pli::mime::parse_message(binary); // must not crash; either outcome is fine
  CHECK(valid_utf8(m.subject));
  CHECK(valid_utf8(m.text_body));
  CHECK(pli::mime::decode_header_value(binary).size() > 0);
  CHECK(valid_utf8(pli::mime::decode_header_value(binary)));
}

TEST_CASE("mime: limits are reported, not silent", "[mime]")
{
  pli::mime::init();
  std::vector<std::string> parts(5, named_part("filename=a.bin"));
  pli::mime::Limits limits;
  limits.max_attachments = 3;
  const auto m = pli::mime::parse_message(mixed_message(parts), limits);
  CHECK(m.attachments.size() == 3);
  CHECK(m.attachments_over_limit == 2);
  CHECK(has_warning(m, "max_attachments"));

  std::string deep = "Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n";
  for (int i = 1; i <= 6; ++i) {
    deep += "--b" + std::to_string(i - 1) + "\nContent-Type: multipart/mixed; boundary=b" +
            std::to_string(i) + "\n\n";
  }
  deep += "--b6\nContent-Type: application/pdf; name=deep.pdf\n\npdf\n";
  limits = {};
  limits.max_depth = 4;
  const auto d = pli::mime::parse_message(deep, limits);
  REQUIRE(d.parsed);
  CHECK(d.depth_limited);
  CHECK(has_warning(d, "max_depth"));
  CHECK(d.attachments.empty());
  limits.max_depth = 32;
  CHECK(pli::mime::parse_message(deep, limits).attachments.size() == 1);
}

TEST_CASE("mime: GMime CRIT warnings are recorded", "[mime]")
{
  pli::mime::init();
  const auto m =
      pli::mime::parse_message("Subject: a\nSubject: b\nContent-Type: text/plain\n\nx\n");
  CHECK(has_warning(m, "CRIT_CONFLICTING_HEADER"));
}

// Every file of the shared corpus (mime/ and, as extra robustness input, dsn/).
TEST_CASE("mime: corpus", "[corpus]")
{
  pli::mime::init();
  const char* dir = std::getenv("PLI_CORPUS_DIR");
  if (dir == nullptr || !std::filesystem::is_directory(std::filesystem::path(dir) / "mime")) {
    WARN("PLI_CORPUS_DIR unset or without mime/: corpus test skipped");
    return;
  }
  std::size_t files = 0;
  std::size_t unparsed = 0;
  std::size_t attachments = 0;
  std::size_t non_ascii_names = 0;
  for (const char* sub : {"mime", "dsn"}) {
    const std::filesystem::path folder = std::filesystem::path(dir) / sub;
    if (!std::filesystem::is_directory(folder)) {
      continue;
    }
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (!entry.is_regular_file()) {
        continue;
      }
      std::ifstream in(entry.path(), std::ios::binary);
      const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      INFO("file: " << entry.path().string());
      const auto m = pli::mime::parse_message(raw);
      ++files;
      unparsed += m.parsed ? 0 : 1;
      for (const std::string* s :
           {&m.subject, &m.message_id, &m.from, &m.date, &m.text_body, &m.html_body}) {
        CHECK(valid_utf8(*s));
      }
      for (const auto& w : m.warnings) {
        CHECK(valid_utf8(w));
      }
      for (const auto& a : m.attachments) {
        ++attachments;
        INFO("attachment: " << a.name);
        CHECK(valid_utf8(a.name));
        CHECK(valid_utf8(a.media_type));
        CHECK(valid_utf8(a.content_id));
        CHECK_FALSE(a.name.empty());
        CHECK(a.name.size() <= pli::mime::Limits{}.max_name_bytes);
        CHECK(a.name != ".");
        CHECK(a.name != "..");
        bool clean = true;
        bool non_ascii = false;
        for (const unsigned char c : a.name) {
          clean = clean && c != '/' && c != '\\' && c >= 0x20 && c != 0x7F;
          non_ascii = non_ascii || c >= 0x80;
        }
        CHECK(clean);
        non_ascii_names += non_ascii ? 1 : 0;
        CHECK(a.sha256_hex == sha256_independent(a.data));
      }
    }
  }
  CHECK(files > 0);
  WARN("corpus: " << files << " files (" << unparsed << " not a message), " << attachments
                  << " attachments, " << non_ascii_names << " non-ASCII names");
}
