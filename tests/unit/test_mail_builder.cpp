// The one mail builder (core/mime/builder.hpp) and the three mails built with it: display
// names quoted or encoded by GMime and read back by GMime's parser, long subjects folded,
// the header order and the parts of each layout, RFC 2231 file names.
#include "core/linkd/reply_mail.hpp"
#include "core/mime/builder.hpp"
#include "core/mime/parse.hpp"

#include <catch2/catch.hpp>

#include <gmime/gmime.h>

#include <regex>

using namespace pli;

namespace {

std::string header_block(const std::string& raw)
{
  return raw.substr(0, raw.find("\r\n\r\n") + 2);
}

// The header `name` as written (its folded lines included), without the final CRLF.
std::string header(const std::string& raw, const std::string& name)
{
  const std::string block = "\r\n" + header_block(raw);
  const auto at = block.find("\r\n" + name + ": ");
  if (at == std::string::npos) {
    return "";
  }
  auto end = at + 2;
  do {
    end = block.find("\r\n", end) + 2;
  } while (end < block.size() && (block[end] == ' ' || block[end] == '\t'));
  return block.substr(at + 2, end - at - 4);
}

// The display name and address of a From value, as GMime's parser reads them.
std::pair<std::string, std::string> parse_mailbox(const std::string& value)
{
  mime::init();
  InternetAddressList* list = internet_address_list_parse(nullptr, value.c_str());
  REQUIRE(list != nullptr);
  REQUIRE(internet_address_list_length(list) == 1);
  InternetAddress* a = internet_address_list_get_address(list, 0);
  REQUIRE(INTERNET_ADDRESS_IS_MAILBOX(a));
  const char* name = internet_address_get_name(a);
  std::pair<std::string, std::string> out{
      name == nullptr ? "" : name, internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a))};
  g_object_unref(list);
  return out;
}

mime::OutgoingMail simple()
{
  mime::OutgoingMail m;
  m.from_display = "Région Exemple (pli)";
  m.from_address = "bounce@example.org";
  m.to = "buyer@example.org";
  m.subject = "Hello";
  m.date = 1796000000LL * 1000000LL;
  m.message_id = "id.1@example.org";
  m.language = "en";
  m.text = "Body é\n";
  return m;
}

} // namespace

TEST_CASE("display names are quoted or encoded by GMime and round-trip through its parser",
          "[mail][builder]")
{
  for (const std::string& name : std::vector<std::string>{
           "Plain Name", "Dupont, Jean", "The \"Best\" Buyer", "Zoé Ärger", "a\\b (c) <d> @ ;:",
           "Mairie de Saint-Étienne, service des marchés publics et de la commande publique (pli)",
           "=?utf-8?q?not_an_encoded_word?=", "日本語の名前"}) {
    INFO(name);
    const std::string value = mime::mailbox(name, "a@example.org");
    for (char c : value) {
      REQUIRE(static_cast<unsigned char>(c) < 0x80);
    }
    std::string one_line = value; // unfolded
    for (auto at = one_line.find("\r\n"); at != std::string::npos; at = one_line.find("\r\n")) {
      one_line.erase(at, 2);
    }
    const auto [display, address] = parse_mailbox(one_line);
    CHECK(address == "a@example.org");
    if (name.find("=?") == std::string::npos) {
      CHECK(display == name);
    }
  }
  CHECK(mime::mailbox("Dupont, Jean", "a@example.org") == "\"Dupont, Jean\" <a@example.org>");
  CHECK(mime::mailbox("", "a@example.org") == "<a@example.org>");
  CHECK(mime::mailbox("Line\r\nBcc: x@evil.example", "a@example.org").find("\n") ==
        std::string::npos);
  // In a built mail the From is the builder's mailbox.
  mime::OutgoingMail m = simple();
  m.from_display = "Dupont, Jean";
  CHECK(header(mime::build(m), "From") == "From: \"Dupont, Jean\" <bounce@example.org>");
}

TEST_CASE("long subjects are folded by GMime and read back whole", "[mail][builder]")
{
  for (const std::string& subject :
       {std::string("Acknowledgment of receipt: \"a very long subject line that goes on and on "
                    "beyond the seventy-eight characters of a line\""),
        std::string("Accusé de réception : « un très long objet de courrier qui dépasse "
                    "largement la limite de soixante-dix-huit caractères »")}) {
    INFO(subject);
    mime::OutgoingMail m = simple();
    m.subject = subject;
    const std::string raw = mime::build(m);
    const std::string h = header(raw, "Subject");
    REQUIRE(h.find("\r\n ") != std::string::npos); // folded
    std::size_t start = 0;
    for (auto at = h.find("\r\n");; at = h.find("\r\n", start)) {
      const std::size_t len = (at == std::string::npos ? h.size() : at) - start;
      CHECK(len <= 78);
      if (at == std::string::npos) {
        break;
      }
      start = at + 2;
    }
    CHECK(raw.find('\n') == raw.find("\r\n") + 1); // CRLF only
    const auto parsed = mime::parse_message(raw);
    REQUIRE(parsed.parsed);
    CHECK(parsed.subject == subject);
  }
  // A short one is written as it is.
  CHECK(header(mime::build(simple()), "Subject") == "Subject: Hello");
  CHECK(mime::fold_header("Subject", "short") == "Subject: short");
}

TEST_CASE("the builder's layouts: header order, parts and attachments", "[mail][builder]")
{
  const std::regex order("^From: .*\r\nTo: <buyer@example.org>\r\nSubject: .*\r\nDate: .*\r\n"
                         "Message-ID: <id.1@example.org>\r\n(X-A: 1\r\n)?MIME-Version: 1.0\r\n"
                         "Content-Language: en\r\nContent-Type: ");
  SECTION("text")
  {
    mime::OutgoingMail m = simple();
    m.extra_headers.emplace_back("X-A", "1");
    const std::string raw = mime::build(m);
    CHECK(std::regex_search(raw, order));
    CHECK(raw.find("X-A: 1\r\nMIME-Version") != std::string::npos);
    CHECK(raw.find("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
                   "base64\r\n\r\n") != std::string::npos);
    const auto parsed = mime::parse_message(raw);
    REQUIRE(parsed.parsed);
    CHECK(parsed.text_body == "Body é\n");
    CHECK(parsed.attachments.empty());
  }
  SECTION("alternative")
  {
    mime::OutgoingMail m = simple();
    m.layout = mime::Layout::alternative;
    m.html = "<p>Body é</p>";
    const std::string raw = mime::build(m);
    CHECK(std::regex_search(raw, order));
    CHECK(raw.find("Content-Type: multipart/alternative; boundary=\"=_pli_") != std::string::npos);
    const auto parsed = mime::parse_message(raw);
    REQUIRE(parsed.parsed);
    CHECK(parsed.text_body == "Body é\n");
    CHECK(parsed.html_body == "<p>Body é</p>");
  }
  SECTION("mixed, with a plain and an RFC 2231 file name")
  {
    mime::OutgoingMail m = simple();
    m.layout = mime::Layout::mixed;
    m.boundary_tag = "n_";
    m.attachments.push_back({"application/pdf", "receipt-1.pdf", "%PDF-1.4 one"});
    m.attachments.push_back({"application/pdf", "accusé \"final\".pdf", "%PDF-1.4 two"});
    const std::string raw = mime::build(m);
    CHECK(std::regex_search(raw, order));
    CHECK(raw.find("Content-Type: multipart/mixed; boundary=\"=_pli_n_") != std::string::npos);
    CHECK(raw.find("Content-Type: application/pdf; name=\"receipt-1.pdf\"\r\n"
                   "Content-Disposition: attachment; filename=\"receipt-1.pdf\"\r\n") !=
          std::string::npos);
    for (char c : header_block(raw)) {
      REQUIRE(static_cast<unsigned char>(c) < 0x80);
    }
    const auto parsed = mime::parse_message(raw);
    REQUIRE(parsed.parsed);
    CHECK(parsed.text_body == "Body é\n");
    REQUIRE(parsed.attachments.size() == 2);
    CHECK(parsed.attachments[0].name == "receipt-1.pdf");
    CHECK(parsed.attachments[0].data == "%PDF-1.4 one");
    CHECK(parsed.attachments[1].name.find("accus") == 0);
    CHECK(parsed.attachments[1].name.find("é") != std::string::npos);
    CHECK(parsed.attachments[1].data == "%PDF-1.4 two");
  }
  SECTION("refused combinations")
  {
    mime::OutgoingMail m = simple();
    m.html = "<p>x</p>";
    CHECK_THROWS_AS(mime::build(m), std::invalid_argument);
    m = simple();
    m.attachments.push_back({"application/pdf", "a.pdf", "x"});
    CHECK_THROWS_AS(mime::build(m), std::invalid_argument);
  }
  SECTION("no header injection from the values the builder writes")
  {
    mime::OutgoingMail m = simple();
    m.to = "buyer@example.org\r\nBcc: x@evil.example";
    m.message_id = "id\r\nBcc: y@evil.example";
    m.extra_headers.emplace_back("X-A", "1\r\nBcc: z@evil.example");
    m.subject = "s\r\nBcc: w@evil.example";
    CHECK(header_block(mime::build(m)).find("\r\nBcc:") == std::string::npos);
  }
  SECTION("a From written by somebody else, with raw 8-bit text, is re-encoded")
  {
    mime::OutgoingMail m = simple();
    m.from_address.clear();
    m.from_header = "Zoé Dupont <zoe@example.org>";
    const auto [display, address] = parse_mailbox(header(mime::build(m), "From").substr(6));
    CHECK(display == "Zoé Dupont");
    CHECK(address == "zoe@example.org");
    m.from_header = "Plain <p@example.org>";
    CHECK(header(mime::build(m), "From") == "From: Plain <p@example.org>");
  }
}

TEST_CASE("the reply notice and the plain mail keep every header and part", "[mail][builder]")
{
  const linkd::ReplyNoticeInput in{.locale = model::Locale::fr,
                                   .timezone = "Europe/Paris",
                                   .organisation = "Région, \"Exemple\"",
                                   .from_address = "bounce@example.org",
                                   .to = "buyer@example.org",
                                   .replier = "bob@entreprise.example",
                                   .subject = "Offre\r\nBcc: x@evil.example",
                                   .sent_at = 1796000000LL * 1000000LL,
                                   .link = "https://pli.example.org/r/abc",
                                   .expires_at = 1798761600LL * 1000000LL,
                                   .now = 1796000100LL * 1000000LL,
                                   .message_id = "r.1@example.org"};
  const std::string raw = linkd::compose_reply_notice(in);
  CHECK(std::regex_search(raw,
                          std::regex("^From: .*\r\nTo: <buyer@example.org>\r\nSubject: "
                                     ".*(\r\n .*)*\r\nDate: .*\r\nMessage-ID: <r.1@example.org>\r\n"
                                     "Auto-Submitted: auto-generated\r\nMIME-Version: "
                                     "1.0\r\nContent-Language: fr\r\nContent-Type: "
                                     "text/plain; charset=utf-8\r\n"
                                     "Content-Transfer-Encoding: base64\r\n\r\n")));
  CHECK(header_block(raw).find("\r\nBcc:") == std::string::npos);
  const auto parsed = mime::parse_message(raw);
  REQUIRE(parsed.parsed);
  CHECK(parsed.subject == "Réponse de bob@entreprise.example : Offre  Bcc: x@evil.example");
  CHECK(parsed.text_body.find("bob@entreprise.example a répondu") == 0);
  CHECK(parsed.text_body.find("https://pli.example.org/r/abc") != std::string::npos);
  CHECK(parse_mailbox(header(raw, "From").substr(6)).first == "Région, \"Exemple\"");
}
