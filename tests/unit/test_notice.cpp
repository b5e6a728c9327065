// The notice of mode AR: headers (RFC 2047 for non-ASCII), both alternatives, French by
// default and English by config, never the body.
#include "core/mime/compose.hpp"
#include "core/mime/parse.hpp"

#include <catch2/catch.hpp>

using namespace pli;

namespace {

mime::NoticeInput input(model::Locale locale)
{
  mime::NoticeInput in;
  in.locale = locale;
  in.timezone = "Europe/Paris";
  in.organisation = "Région Exemple";
  in.from_header_raw = "=?utf-8?q?Am=C3=A9lie?= <amelie@marches.example.org>";
  in.sender_display = "Amélie <amelie@marches.example.org>";
  in.recipient = "candidat@entreprise.example";
  in.subject = "Résultat <important> & « final »";
  in.type = model::MessageType::rejet;
  in.consultation =
      mime::ConsultationInfo{"2022AK_014", "Espaces verts", "Entretien", "15/12/2026 12:00"};
  in.link = "https://pli.example.org/m/abcdefghijklmnopqrstuv";
  in.expires_at = 1798761600LL * 1000000LL; // 2027-01-01T00:00:00Z
  in.now = 1796000000LL * 1000000LL;
  in.message_id = "dabc.1@example.org";
  in.reply_allowed = true;
  return in;
}

} // namespace

TEST_CASE("the notice in French and English", "[notice]")
{
  mime::init();
  struct Row
  {
    model::Locale locale;
    std::vector<std::string> text;
  };
  const std::vector<Row> rows = {
      {model::Locale::fr,
       {"Région Exemple vous a adressé un courrier électronique avec accusé de réception",
        "Type de courrier : Courrier de rejet", "Consultation : 2022AK_014 – Espaces verts",
        "Date et heure limite de remise des plis : 15/12/2026 12:00",
        "https://pli.example.org/m/abcdefghijklmnopqrstuv", "jusqu'au 01/01/2027 01:00",
        "génère un accusé de réception horodaté", "répondre"}},
      {model::Locale::en,
       {"Région Exemple has sent you a registered e-mail with acknowledgment of receipt",
        "Type: Rejection letter", "Deadline for tenders: 15/12/2026 12:00",
        "valid until 01/01/2027 01:00", "timestamped acknowledgment of receipt"}},
  };
  for (const auto& row : rows) {
    const std::string raw = mime::compose_notice(input(row.locale));
    // Headers: CRLF, the buyer as From, RFC 2047 for the non-ASCII subject.
    CHECK(raw.find("From: =?utf-8?q?Am=C3=A9lie?= <amelie@marches.example.org>\r\n") == 0);
    CHECK(raw.find("To: <candidat@entreprise.example>\r\n") != std::string::npos);
    CHECK(raw.find("Message-ID: <dabc.1@example.org>\r\n") != std::string::npos);
    CHECK(raw.find("Subject: =?") != std::string::npos);
    CHECK(raw.find("multipart/alternative") != std::string::npos);
    for (char c : raw.substr(0, raw.find("\r\n\r\n"))) {
      CHECK(static_cast<unsigned char>(c) < 0x80); // headers are 7-bit
    }
    auto parsed = mime::parse_message(raw);
    REQUIRE(parsed.parsed);
    CHECK(parsed.subject == "Résultat <important> & « final »");
    CHECK(parsed.attachments.empty());
    for (const auto& t : row.text) {
      INFO(t);
      CHECK(parsed.text_body.find(t) != std::string::npos);
    }
    // The HTML alternative escapes what came from the message.
    CHECK(parsed.html_body.find("Résultat &lt;important&gt; &amp; « final »") != std::string::npos);
    CHECK(parsed.html_body.find("<important>") == std::string::npos);
    CHECK(parsed.html_body.find(row.locale == model::Locale::fr ? "lang=\"fr\"" : "lang=\"en\"") !=
          std::string::npos);
  }
}

TEST_CASE("a From header the buyer's client wrote with raw 8-bit text is encoded in the notice",
          "[notice]")
{
  // A raw UTF-8 or Latin-1 display name in the notice's headers would make Postfix require
  // SMTPUTF8 of the recipient's server (5.6.7 where it is not offered).
  mime::init();
  for (const std::string& raw : {std::string("Zo\xc3\xa9 Acheteuse <zoe@marches.example.org>"),
                                 std::string("\"Zo\xe9, Achats\" <zoe@marches.example.org>")}) {
    auto in = input(model::Locale::fr);
    in.from_header_raw = raw;
    const std::string notice = mime::compose_notice(in);
    const std::string headers = notice.substr(0, notice.find("\r\n\r\n"));
    INFO(headers);
    for (char c : headers) {
      REQUIRE(static_cast<unsigned char>(c) < 0x80);
    }
    auto parsed = mime::parse_message(notice);
    REQUIRE(parsed.parsed);
    CHECK(parsed.from.find("zoe@marches.example.org") != std::string::npos);
    CHECK(parsed.from.find("Zo\xc3\xa9") != std::string::npos);
  }
}

TEST_CASE("the notice's text part writes the organisation's name as it is", "[notice]")
{
  mime::init();
  for (auto locale : {model::Locale::fr, model::Locale::en}) {
    auto in = input(locale);
    in.organisation = "Ville d'Arles & <Camargue>";
    auto parsed = mime::parse_message(mime::compose_notice(in));
    REQUIRE(parsed.parsed);
    INFO(parsed.text_body);
    CHECK(parsed.text_body.rfind("Ville d'Arles & <Camargue> ", 0) == 0);
    CHECK(parsed.text_body.find("&#39;") == std::string::npos);
    // The HTML alternative still escapes it.
    CHECK(parsed.html_body.find("Ville d&#39;Arles &amp; &lt;Camargue&gt;") != std::string::npos);
  }
}
