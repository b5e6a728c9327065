// Unit tests for pli::dsn: RFC 3464 / RFC 6533 delivery status notifications (the real
// Postfix DSNs of the shared samples and synthetic quirks), non-standard bounces in
// English and French, messages that are not bounces, garbage, and a corpus run.
#include "core/dsn/detail.hpp"
#include "core/dsn/dsn.hpp"

#include <catch2/catch.hpp>
#include <glib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

using pli::dsn::Action;
using pli::dsn::action_name;
using pli::dsn::parse_report;
using pli::dsn::RecipientReport;
using pli::dsn::Report;

namespace fs = std::filesystem;

std::string read_file(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool valid_utf8(const std::string& s)
{
  return g_utf8_validate(s.data(), static_cast<gssize>(s.size()), nullptr) != FALSE;
}

// The sample bounces: PLI_SAMPLES_DIR, else next to PLI_CORPUS_DIR, else the samples folder
// beside the source tree (PLI_SOURCE_DIR, defined by tests/CMakeLists.txt).
std::optional<fs::path> samples_dir()
{
  std::error_code ec;
  std::vector<fs::path> candidates;
  if (const char* d = std::getenv("PLI_SAMPLES_DIR"); d != nullptr) {
    candidates.emplace_back(d);
  }
  if (const char* c = std::getenv("PLI_CORPUS_DIR"); c != nullptr) {
    candidates.push_back(fs::path(c) / ".." / "samples");
  }
#ifdef PLI_SOURCE_DIR
  candidates.push_back(fs::path(PLI_SOURCE_DIR) / ".." / "shared" / "samples");
#endif
  for (const fs::path& p : candidates) {
    if (fs::is_directory(p, ec)) {
      return p;
    }
  }
  return std::nullopt;
}

// A multipart/report around a notice and a delivery-status body.
std::string
report_message(const std::string& ds_body,
               const std::string& ds_headers = "Content-Type: message/delivery-status\n")
{
  return "From: Mail Delivery System <MAILER-DAEMON@mx.example>\n"
         "To: bounce+abc@buyer.example\n"
         "Subject: Undelivered Mail Returned to Sender\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\n"
         "\n"
         "--BB\n"
         "Content-Type: text/plain; charset=us-ascii\n"
         "\n"
         "Your message could not be delivered.\n"
         "\n"
         "--BB\n" +
         ds_headers + "\n" + ds_body +
         "\n"
         "--BB--\n";
}

// A single text/plain message.
std::string text_message(const std::string& headers, const std::string& body)
{
  return headers + "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body;
}

const RecipientReport& only_recipient(const std::optional<Report>& r)
{
  REQUIRE(r.has_value());
  REQUIRE(r->recipients.size() == 1);
  return r->recipients.front();
}

// Postfix's delay DSN (samples/dsn-delay-R5.eml), kept here so that one real DSN is
// always tested even without the shared directory.
const std::string k_postfix_delay = R"(Return-Path: <>
Date: Sun, 29 Nov 2026 00:40:07 +0000 (UTC)
From: Mail Delivery System <MAILER-DAEMON@buyer.example>
Subject: Delayed Mail (still being retried)
To: bounce+R5@buyer.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="C5111A720FD.1795912807/mail.buyer.example"
Content-Transfer-Encoding: 8bit
Message-Id: <20261129004007.BB379A721C4@mail.buyer.example>

This is a MIME-encapsulated message.

--C5111A720FD.1795912807/mail.buyer.example
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.buyer.example.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than 0 hour(s).
It will be retried until it is 5 day(s) old.

                   The mail system

<softfail@remote.example>: host 127.0.0.1[127.0.0.1] said: 450 4.2.1 mailbox
    temporarily unavailable (sink) (in reply to RCPT TO command)

--C5111A720FD.1795912807/mail.buyer.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.buyer.example
Original-Envelope-Id: R5
X-Postfix-Queue-ID: C5111A720FD
X-Postfix-Sender: rfc822; bounce+R5@buyer.example
Arrival-Date: Sun, 29 Nov 2026 00:39:30 +0000 (UTC)

Final-Recipient: rfc822; softfail@remote.example
Original-Recipient: rfc822;softfail@remote.example
Action: delayed
Status: 4.2.1
Remote-MTA: dns; 127.0.0.1
Diagnostic-Code: smtp; 450 4.2.1 mailbox temporarily unavailable (sink)
Will-Retry-Until: Fri,  4 Dec 2026 00:39:30 +0000 (UTC)

--C5111A720FD.1795912807/mail.buyer.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <bounce+R5@buyer.example>
From: Buyer <bounce+R5@buyer.example>
To: softfail@remote.example
Subject: R5

--C5111A720FD.1795912807/mail.buyer.example--
)";

} // namespace

// ---------------------------------------------------------------------------------
// RFC 3464: real Postfix DSNs

TEST_CASE("dsn: Postfix delay DSN (inline copy of dsn-delay-R5)", "[dsn]")
{
  auto r = parse_report(k_postfix_delay);
  const RecipientReport& rcpt = only_recipient(r);
  CHECK_FALSE(r->inferred);
  CHECK(r->reporting_mta == "mail.buyer.example");
  CHECK(r->original_envelope_id == "R5");
  CHECK(r->arrival_date == "Sun, 29 Nov 2026 00:39:30 +0000 (UTC)");
  CHECK(r->subject == "Delayed Mail (still being retried)");
  CHECK(rcpt.action == Action::delayed);
  CHECK(rcpt.action_raw == "delayed");
  CHECK(rcpt.status == "4.2.1");
  CHECK(rcpt.final_recipient == "softfail@remote.example");
  CHECK(rcpt.original_recipient == "softfail@remote.example");
  CHECK(rcpt.remote_mta == "127.0.0.1");
  CHECK(rcpt.diagnostic_code == "450 4.2.1 mailbox temporarily unavailable (sink)");
  CHECK(rcpt.reply_code == "450");
  CHECK(rcpt.will_retry_until == "Fri,  4 Dec 2026 00:39:30 +0000 (UTC)");
  CHECK(pli::dsn::event_kind_for(rcpt.action) == "delayed");
}

TEST_CASE("dsn: the Postfix DSNs of the shared samples", "[dsn][samples]")
{
  auto dir = samples_dir();
  if (!dir) {
    WARN("no shared samples directory found: samples test skipped");
    return;
  }
  struct Row
  {
    const char* file;
    Action action;
    const char* status;
    const char* final_recipient;
    const char* envid;
    const char* remote_mta;
    const char* diagnostic;
    const char* subject;
  };
  const std::vector<Row> rows = {
      {"dsn-success-relayed-R2.eml", Action::relayed, "2.0.0", "someone@nodsn.example", "R2",
       "127.0.0.1", "250 2.0.0 Ok", "Successful Mail Delivery Report"},
      {"dsn-relayed-via-pli-smtp.eml", Action::relayed, "2.0.0", "a3@remote.example", "A3",
       "127.0.0.1", "250 2.0.0 Ok", "Successful Mail Delivery Report"},
      {"dsn-success-delivered-R6.eml", Action::delivered, "2.0.0", "carol@buyer.example", "R6", "",
       "delivery via virtual: delivered to maildir", "Successful Mail Delivery Report"},
      {"dsn-failure-error-transport-R3.eml", Action::failed, "5.1.1", "failme@remote.example", "R3",
       "", "user unknown (pfx-sandbox error transport)", "Undelivered Mail Returned to Sender"},
      {"dsn-failure-remote-550-R4.eml", Action::failed, "5.1.1", "hardfail@remote.example", "R4",
       "127.0.0.1", "550 5.1.1 <hardfail@remote.example>: user unknown (sink)",
       "Undelivered Mail Returned to Sender"},
      {"dsn-failure-default-notify-R9.eml", Action::failed, "5.1.1", "failme@remote.example", "",
       "", "user unknown (pfx-sandbox error transport)", "Undelivered Mail Returned to Sender"},
      {"dsn-failure-after-milter-chgfrom-S10.eml", Action::failed, "5.1.1",
       "hardfail@remote.example", "T10", "127.0.0.1",
       "550 5.1.1 <hardfail@remote.example>: user unknown (sink)",
       "Undelivered Mail Returned to Sender"},
      {"dsn-failure-via-pli-smtp-C2.eml", Action::failed, "5.1.1", "c2@remote.example", "hardC2",
       "127.0.0.1", "550 5.1.1 <hardfail@remote.example>: user unknown (sink)",
       "Undelivered Mail Returned to Sender"},
      {"dsn-delay-R5.eml", Action::delayed, "4.2.1", "softfail@remote.example", "R5", "127.0.0.1",
       "450 4.2.1 mailbox temporarily unavailable (sink)", "Delayed Mail (still being retried)"},
      {"milter-view-of-dsn-R2.eml", Action::relayed, "2.0.0", "someone@nodsn.example", "R2",
       "127.0.0.1", "250 2.0.0 Ok", "Successful Mail Delivery Report"},
  };
  for (const Row& row : rows) {
    fs::path path = *dir / row.file;
    if (!fs::exists(path)) {
      WARN("sample missing: " << path.string());
      continue;
    }
    INFO("sample " << row.file);
    auto r = parse_report(read_file(path));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK_FALSE(r->inferred);
    CHECK(r->reporting_mta == "mail.buyer.example");
    CHECK(r->original_envelope_id == row.envid);
    CHECK(r->subject == row.subject);
    CHECK(rcpt.action == row.action);
    CHECK(rcpt.status == row.status);
    CHECK(rcpt.final_recipient == row.final_recipient);
    CHECK(rcpt.original_recipient == row.final_recipient);
    CHECK(rcpt.remote_mta == row.remote_mta);
    CHECK(rcpt.diagnostic_code == row.diagnostic);
  }
}

// ---------------------------------------------------------------------------------
// RFC 3464 / RFC 6533: synthetic quirks

TEST_CASE("dsn: per-message and recipient fields without a blank line", "[dsn]")
{
  auto r = parse_report(report_message("Reporting-MTA: dns; mx.example\n"
                                       "Original-Envelope-Id: ENV1\n"
                                       "Final-Recipient: rfc822; bob@remote.example\n"
                                       "Action: failed\n"
                                       "Status: 5.1.1\n"));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(r->reporting_mta == "mx.example");
  CHECK(r->original_envelope_id == "ENV1");
  CHECK(rcpt.final_recipient == "bob@remote.example");
  CHECK(rcpt.action == Action::failed);
  CHECK(rcpt.status == "5.1.1");
}

TEST_CASE("dsn: multiple and whitespace-only blank lines, CRLF, folded Diagnostic-Code", "[dsn]")
{
  std::string body =
      "Reporting-MTA: dns; mx.example\r\n"
      "\r\n"
      "   \r\n"
      "\t\r\n"
      "Final-Recipient: RFC822; <Bob@Remote.example>\r\n"
      "Action: Failed\r\n"
      "Status: 5.2.2 (mailbox full)\r\n"
      "Remote-MTA: DNS; mx.remote.example\r\n"
      "Diagnostic-Code: smtp; 552-5.2.2 The email account that you tried to reach\r\n"
      "\tis over quota.\r\n"
      "  Please try later.\r\n"
      "Last-Attempt-Date: Thu, 1 Jan 2026 10:00:00 +0000\r\n"
      "\r\n\r\n\r\n";
  std::string msg = report_message(body);
  auto r = parse_report(msg);
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(rcpt.final_recipient == "Bob@Remote.example");
  CHECK(rcpt.action == Action::failed);
  CHECK(rcpt.action_raw == "failed");
  CHECK(rcpt.status == "5.2.2");
  CHECK(rcpt.remote_mta == "mx.remote.example");
  CHECK(rcpt.diagnostic_code ==
        "552-5.2.2 The email account that you tried to reach is over quota. Please try later.");
  CHECK(rcpt.reply_code == "552");
  CHECK(rcpt.last_attempt_date == "Thu, 1 Jan 2026 10:00:00 +0000");
}

TEST_CASE("dsn: several recipients, with and without blank lines between them", "[dsn]")
{
  auto r = parse_report(report_message("Reporting-MTA: dns; mx.example\n"
                                       "\n"
                                       "Final-Recipient: rfc822; a@remote.example\n"
                                       "Action: failed\n"
                                       "Status: 5.1.1\n"
                                       "\n"
                                       "Original-Recipient: rfc822; b-orig@remote.example\n"
                                       "Final-Recipient: rfc822; b@remote.example\n"
                                       "Action: delayed\n"
                                       "Status: 4.4.1\n"
                                       "Original-Recipient: rfc822; c-orig@remote.example\n"
                                       "Final-Recipient: rfc822; c@remote.example\n"
                                       "Action: relayed\n"
                                       "Status: 2.0.0\n"));
  REQUIRE(r.has_value());
  REQUIRE(r->recipients.size() == 3);
  CHECK(r->recipients[0].final_recipient == "a@remote.example");
  CHECK(r->recipients[0].action == Action::failed);
  CHECK(r->recipients[1].final_recipient == "b@remote.example");
  CHECK(r->recipients[1].original_recipient == "b-orig@remote.example");
  CHECK(r->recipients[1].action == Action::delayed);
  CHECK(r->recipients[2].final_recipient == "c@remote.example");
  CHECK(r->recipients[2].original_recipient == "c-orig@remote.example");
  CHECK(r->recipients[2].action == Action::relayed);
  CHECK(pli::dsn::event_kind_for(r->recipients[2].action) == "delivered");
}

TEST_CASE("dsn: non-standard Action values are kept raw and map to unknown", "[dsn]")
{
  for (const char* value : {"deliverable", "expired", "Expired (queue timeout)", ""}) {
    INFO("Action: " << value);
    auto r = parse_report(report_message(std::string("Reporting-MTA: dns; mx.example\n\n"
                                                     "Final-Recipient: rfc822; a@remote.example\n"
                                                     "Action: ") +
                                         value + "\nStatus: 2.1.5\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::unknown);
    CHECK(pli::dsn::event_kind_for(rcpt.action).empty());
    std::string raw = value;
    for (char& c : raw) {
      c = static_cast<char>(g_ascii_tolower(c));
    }
    CHECK(rcpt.action_raw == raw);
  }
}

TEST_CASE("dsn: message/global-delivery-status with UTF-8 addresses (RFC 6533)", "[dsn]")
{
  auto r =
      parse_report(report_message("Reporting-MTA: dns; mx.example\n"
                                  "\n"
                                  "Final-Recipient: utf-8; j\xC3\xBCrgen@b\xC3\xBC"
                                  "cher.example\n"
                                  "Original-Recipient: utf-8; <ren\\x{E9}@caf\\x{E9}.example>\n"
                                  "Action: failed\n"
                                  "Status: 5.1.1\n"
                                  "\n"
                                  "Final-Recipient: utf-8; \\x{1F600}@x.example\n"
                                  "Action: failed\n"
                                  "Status: 5.1.1\n",
                                  "Content-Type: message/global-delivery-status\n"));
  REQUIRE(r.has_value());
  REQUIRE(r->recipients.size() == 2);
  CHECK(r->recipients[0].final_recipient == "j\xC3\xBCrgen@b\xC3\xBC"
                                            "cher.example");
  CHECK(r->recipients[0].original_recipient == "ren\xC3\xA9@caf\xC3\xA9.example");
  CHECK(r->recipients[1].final_recipient == "\xF0\x9F\x98\x80@x.example");
}

TEST_CASE("dsn: base64-encoded delivery-status part", "[dsn]")
{
  std::string fields = "Reporting-MTA: dns; mx.example\n\n"
                       "Final-Recipient: rfc822; b64@remote.example\n"
                       "Action: failed\n"
                       "Status: 5.7.1\n"
                       "Diagnostic-Code: smtp; 550 5.7.1 rejected\n";
  gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(fields.data()), fields.size());
  std::string b64 = encoded;
  g_free(encoded);
  std::string wrapped;
  for (std::size_t i = 0; i < b64.size(); i += 60) {
    wrapped += b64.substr(i, 60) + "\n";
  }
  auto r = parse_report(report_message(
      wrapped, "Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n"));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(rcpt.final_recipient == "b64@remote.example");
  CHECK(rcpt.status == "5.7.1");
  CHECK(rcpt.diagnostic_code == "550 5.7.1 rejected");
}

TEST_CASE("dsn: recipient groups base64-encoded inside the delivery-status body (quirk)", "[dsn]")
{
  std::string inner = "Final-Recipient: rfc822; quirk@remote.example\n"
                      "Original-Recipient: rfc822;quirk@remote.example\n"
                      "Action: failed\n"
                      "Status: 5.1.1\n"
                      "Diagnostic-Code: smtp; 550 5.1.1 <quirk@remote.example>: Recipient address\n"
                      "    rejected: User unknown\n";
  gchar* encoded = g_base64_encode(reinterpret_cast<const guchar*>(inner.data()), inner.size());
  std::string b64 = encoded;
  g_free(encoded);
  std::string wrapped;
  for (std::size_t i = 0; i < b64.size(); i += 60) {
    wrapped += b64.substr(i, 60) + "\n";
  }
  auto r = parse_report(report_message("Reporting-MTA: dns; hmail.example\n"
                                       "X-Postfix-Queue-ID: 630A242E63\n"
                                       "Content-Transfer-Encoding: base64\n"
                                       "Content-length: 712\n"
                                       "\n" +
                                       wrapped));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(r->reporting_mta == "hmail.example");
  CHECK(rcpt.final_recipient == "quirk@remote.example");
  CHECK(rcpt.action == Action::failed);
  CHECK(rcpt.status == "5.1.1");
  CHECK(rcpt.diagnostic_code ==
        "550 5.1.1 <quirk@remote.example>: Recipient address rejected: User unknown");
}

TEST_CASE("dsn: a delivery-status part of the report wins over one in the returned message",
          "[dsn]")
{
  std::string msg = "From: MAILER-DAEMON@mx.example\n"
                    "Subject: failure\n"
                    "MIME-Version: 1.0\n"
                    "Content-Type: multipart/mixed; boundary=\"OUT\"\n"
                    "\n"
                    "--OUT\n"
                    "Content-Type: message/rfc822\n"
                    "\n"
                    "Subject: an old bounce, forwarded\n"
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"IN\"\n"
                    "\n"
                    "--IN\n"
                    "Content-Type: message/delivery-status\n"
                    "\n"
                    "Final-Recipient: rfc822; nested@remote.example\n"
                    "Action: delayed\n"
                    "Status: 4.0.0\n"
                    "\n"
                    "--IN--\n"
                    "\n"
                    "--OUT\n"
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"RR\"\n"
                    "\n"
                    "--RR\n"
                    "Content-Type: message/delivery-status\n"
                    "\n"
                    "Reporting-MTA: dns; mx.example\n"
                    "\n"
                    "Final-Recipient: rfc822; real@remote.example\n"
                    "Action: failed\n"
                    "Status: 5.0.0\n"
                    "\n"
                    "--RR--\n"
                    "\n"
                    "--OUT--\n";
  auto r = parse_report(msg);
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(rcpt.final_recipient == "real@remote.example");
  CHECK(rcpt.action == Action::failed);
}

TEST_CASE("dsn: a delivery-status part holding prose is skipped for the next one", "[dsn]")
{
  std::string msg = "From: Postmaster@ci.example\n"
                    "Subject: Mail System Error - Returned Mail\n"
                    "MIME-Version: 1.0\n"
                    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n"
                    "\n"
                    "--B\n"
                    "Content-Type: message/delivery-status\n"
                    "\n"
                    "This Message was undeliverable due to the following reason:\n"
                    "\n"
                    "<u@ci.example> has restricted SMS e-mail\n"
                    "\n"
                    "--B\n"
                    "Content-Type: message/delivery-status\n"
                    "\n"
                    "Reporting-MTA: dns; mta.ci.example\n"
                    "\n"
                    "Original-Recipient: rfc822;u@ci.example\n"
                    "Final-Recipient: RFC822; <u@ci.example>\n"
                    "Action: failed\n"
                    "Status: 5.3.0\n"
                    "\n"
                    "--B--\n";
  auto r = parse_report(msg);
  const RecipientReport& rcpt = only_recipient(r);
  CHECK_FALSE(r->inferred);
  CHECK(r->reporting_mta == "mta.ci.example");
  CHECK(rcpt.final_recipient == "u@ci.example");
  CHECK(rcpt.status == "5.3.0");
}

TEST_CASE("dsn: an empty delivery-status part falls back to the text", "[dsn]")
{
  auto r = parse_report(report_message(""));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(r->inferred);
  CHECK(rcpt.action == Action::failed);
}

// ---------------------------------------------------------------------------------
// Internals of the field reader

TEST_CASE("dsn: field values are cleaned", "[dsn]")
{
  using namespace pli::dsn::detail;
  struct Row
  {
    const char* in;
    const char* out;
  };
  for (const Row& row : std::vector<Row>{{"rfc822; a@b.example", "a@b.example"},
                                         {"RFC822;<a@b.example>", "a@b.example"},
                                         {"rfc/822;a@b.example", "a@b.example"},
                                         {"  a@b.example  ", "a@b.example"},
                                         {"<a@b.example>", "a@b.example"},
                                         {"utf-8; \\x{E9}@b.example", "\xC3\xA9@b.example"},
                                         {"rfc822; \\x{E9}@b.example", "\\x{E9}@b.example"},
                                         {"", ""}}) {
    CHECK(clean_address(row.in) == row.out);
  }
  CHECK(strip_type("dns; mx.example") == "mx.example");
  CHECK(strip_type("smtp; 550 5.1.1 no; really") == "550 5.1.1 no; really");
  CHECK(strip_type("X-Postfix; user unknown") == "user unknown");
  CHECK(strip_type("550 5.1.1 no such user; sorry") == "550 5.1.1 no such user; sorry");
  CHECK(decode_utf8_escapes("\\x{41}\\x{42") == "A\\x{42");
  CHECK(decode_utf8_escapes("\\x{D800}\\x{110000}\\x{}\\x{0}") ==
        "\\x{D800}\\x{110000}\\x{}\\x{0}");
  CHECK(decode_utf8_escapes("\\x{10FFFF}") == "\xF4\x8F\xBF\xBF");
  CHECK(action_from(" FAILED ") == Action::failed);
  CHECK(action_from("delayed (will retry)") == Action::delayed);
  CHECK(action_from("Expanded") == Action::expanded);
  CHECK(action_from("deliverable") == Action::unknown);
  CHECK(leading_reply_code("550 5.1.1 x") == "550");
  CHECK(leading_reply_code("550-5.1.1 x") == "550");
  CHECK(leading_reply_code("5501 x").empty());
  CHECK(leading_reply_code("user unknown").empty());
}

TEST_CASE("dsn: field groups", "[dsn]")
{
  using namespace pli::dsn::detail;
  auto groups = split_field_groups("\n\nA: 1\n  more\nB:2\r\n \r\nC : 3\rjunk line\n\n\n");
  REQUIRE(groups.size() == 2);
  REQUIRE(groups[0].fields.size() == 2);
  CHECK(groups[0].fields[0].name == "a");
  CHECK(groups[0].fields[0].value == "1 more");
  CHECK(groups[0].fields[1].value == "2");
  REQUIRE(groups[1].fields.size() == 1);
  CHECK(groups[1].fields[0].name == "c");
  CHECK(groups[1].has_other_lines);
  CHECK(split_field_groups("").empty());
  CHECK(parse_delivery_status("no fields at all\n\njust prose").recipients.empty());
}

// ---------------------------------------------------------------------------------
// Non-standard bounces

TEST_CASE("dsn: qmail-style failure (English)", "[dsn][inferred]")
{
  auto r = parse_report(text_message(
      "From: MAILER-DAEMON@mx4.example\nTo: bounce+x@buyer.example\nSubject: failure notice\n",
      "Hi. This is the qmail-send program at mx4.example.\n"
      "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
      "This is a permanent error; I've given up. Sorry it didn't work out.\n"
      "\n"
      "<kijitora@remote.example>:\n"
      "192.0.2.135 does not like recipient.\n"
      "Remote host said: 450 4.2.2 <kijitora@remote.example>... Mailbox Full\n"
      "Giving up on 192.0.2.135.\n"
      "\n"
      "--- Below this line is a copy of the message.\n"
      "\n"
      "Return-Path: <bounce+x@buyer.example>\n"
      "Subject: delivery has been delayed, will retry, 550 5.1.1 user unknown\n"));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(r->inferred);
  CHECK(r->subject == "failure notice");
  CHECK(rcpt.action == Action::failed);
  CHECK(rcpt.status == "4.2.2");
  CHECK(rcpt.reply_code == "450");
  CHECK(rcpt.final_recipient == "kijitora@remote.example");
  CHECK(rcpt.diagnostic_code ==
        "Remote host said: 450 4.2.2 <kijitora@remote.example>... Mailbox Full");
}

TEST_CASE("dsn: Exchange-style failure without any code", "[dsn][inferred]")
{
  auto r = parse_report(text_message(
      "From: System Administrator <postmaster@remote.example>\nSubject: Undeliverable: Hello\n",
      "Your message\n\n  To:      alice@remote.example\n  Subject: Hello\n\n"
      "did not reach the following recipient(s):\n\n"
      "alice@remote.example on Thu, 29 Apr 2010 00:00:00 -0000\n"
      "    The recipient name is not recognized\n"));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(rcpt.action == Action::failed);
  CHECK(rcpt.status.empty());
  CHECK(rcpt.final_recipient == "alice@remote.example");
  CHECK(rcpt.diagnostic_code == "The recipient name is not recognized");
}

TEST_CASE("dsn: delay warnings (English)", "[dsn][inferred]")
{
  SECTION("sendmail")
  {
    auto r = parse_report(text_message(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example>\n"
        "Subject: Warning: could not send message for past 4 hours\n",
        "    **********************************************\n"
        "    **      THIS IS A WARNING MESSAGE ONLY      **\n"
        "    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **\n"
        "    **********************************************\n\n"
        "The original message was received at Mon, 1 Jan 2026 10:00:00 +0100\n\n"
        "   ----- Transcript of session follows -----\n"
        "<bob@remote.example>... Deferred: Connection timed out with mx.remote.example.\n"
        "Warning: message still undelivered after 4 hours\n"
        "Will keep trying until message is 5 days old\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::delayed);
    CHECK(rcpt.final_recipient == "bob@remote.example");
  }
  SECTION("Exchange, 4xx code")
  {
    auto r = parse_report(text_message(
        "From: Microsoft Outlook <postmaster@outlook.example>\nSubject: Delivery delayed: Hello\n",
        "Delivery is delayed to these recipients or groups:\n\n"
        "carol@remote.example\n\n"
        "This message hasn't been delivered yet. Delivery will continue to be attempted.\n\n"
        "Remote Server returned '451 4.4.0 Primary target IP address responded with: "
        "\"421 4.4.2 Connection dropped.\"'\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::delayed);
    CHECK(rcpt.status == "4.4.0");
    CHECK(rcpt.final_recipient == "carol@remote.example");
  }
  SECTION("Postfix's notice without its delivery-status part")
  {
    std::string msg = k_postfix_delay;
    msg.replace(msg.find("Content-Type: message/delivery-status"),
                std::string_view("Content-Type: message/delivery-status").size(),
                "Content-Type: application/octet-stream");
    auto r = parse_report(msg);
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(r->inferred);
    CHECK(rcpt.action == Action::delayed);
    CHECK(rcpt.status == "4.2.1");
    CHECK(rcpt.reply_code == "450");
    CHECK(rcpt.final_recipient == "softfail@remote.example");
  }
  SECTION("a 4xx bounce that gave up is a failure")
  {
    auto r = parse_report(text_message(
        "From: MAILER-DAEMON@mx.example\nSubject: failure notice\n",
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<dave@remote.example>:\n"
        "Sorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n"
        "I'm not going to try again; this message has been in the queue too long.\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::failed);
    CHECK(rcpt.status == "4.4.1");
  }
}

TEST_CASE("dsn: non-standard bounces in French", "[dsn][inferred]")
{
  SECTION("n'a pas pu être remis, utilisateur inconnu, 550 5.1.1")
  {
    auto r = parse_report(
        text_message("From: =?utf-8?q?Syst=C3=A8me_de_messagerie?= <MAILER-DAEMON@mx.example.fr>\n"
                     "Subject: =?utf-8?q?Non_remis_=3A_Devis?=\n",
                     "Votre message n\xE2\x80\x99"
                     "a pas pu \xC3\xAA"
                     "tre remis \xC3\xA0 un ou plusieurs "
                     "destinataires.\n\n"
                     "  jean.dupont@exemple.fr\n"
                     "  Le serveur distant a r\xC3\xA9pondu : 550 5.1.1 Utilisateur inconnu\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(r->inferred);
    CHECK(r->subject == "Non remis : Devis");
    CHECK(rcpt.action == Action::failed);
    CHECK(rcpt.status == "5.1.1");
    CHECK(rcpt.reply_code == "550");
    CHECK(rcpt.final_recipient == "jean.dupont@exemple.fr");
    CHECK(rcpt.diagnostic_code ==
          "Le serveur distant a r\xC3\xA9pondu : 550 5.1.1 Utilisateur inconnu");
  }
  SECTION("adresse introuvable, no code, ISO-8859-1 quoted-printable")
  {
    std::string msg = "From: Postmaster <postmaster@exemple.fr>\n"
                      "Subject: Message non distribuable\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=iso-8859-1\n"
                      "Content-Transfer-Encoding: quoted-printable\n"
                      "\n"
                      "Votre message n'a pas pu =EAtre d=E9livr=E9.\n"
                      "Adresse introuvable : <marie@exemple.fr>\n";
    auto r = parse_report(msg);
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::failed);
    CHECK(rcpt.status.empty());
    CHECK(rcpt.final_recipient == "marie@exemple.fr");
    CHECK(rcpt.diagnostic_code == "Adresse introuvable : <marie@exemple.fr>");
  }
  SECTION("remise différée, nouvelle tentative, 4.4.1")
  {
    auto r = parse_report(
        text_message("From: MAILER-DAEMON@mx.example.fr\n"
                     "Subject: =?utf-8?q?Remise_diff=C3=A9r=C3=A9e?=\n",
                     "La remise de votre message \xC3\xA0 paul@exemple.fr a \xC3\xA9t\xC3\xA9 "
                     "retard\xC3\xA9"
                     "e.\n"
                     "Erreur temporaire : 421 4.4.1 connexion impossible.\n"
                     "Une nouvelle tentative aura lieu plus tard.\n"));
    const RecipientReport& rcpt = only_recipient(r);
    CHECK(rcpt.action == Action::delayed);
    CHECK(rcpt.status == "4.4.1");
    CHECK(rcpt.final_recipient == "paul@exemple.fr");
  }
}

TEST_CASE("dsn: DSN fields pasted into a text-only notice", "[dsn][inferred]")
{
  auto r = parse_report(text_message("From: MAILER-DAEMON@mx.example (Mail Delivery System)\n"
                                     "Subject: Delayed Mail (still being retried)\n",
                                     "This is the mail system at host mx.example.\n\n"
                                     "Reporting-MTA: dns; mx.example\n"
                                     "Arrival-Date: Thu, 29 Apr 2017 23:34:45 +0900 (JST)\n\n"
                                     "Final-Recipient: rfc822; kijitora@remote.example\n"
                                     "Action: delayed\n"
                                     "Status: 4.4.1\n"
                                     "Diagnostic-Code: X-Postfix; connect to\n"
                                     "    mx.remote.example[192.0.2.2]:25: No route to host\n"));
  const RecipientReport& rcpt = only_recipient(r);
  CHECK(r->inferred);
  CHECK(r->reporting_mta == "mx.example");
  CHECK(rcpt.action == Action::delayed);
  CHECK(rcpt.status == "4.4.1");
  CHECK(rcpt.diagnostic_code == "connect to mx.remote.example[192.0.2.2]:25: No route to host");
}

// ---------------------------------------------------------------------------------
// Not bounces

TEST_CASE("dsn: auto-replies are not bounces", "[dsn][not-bounce]")
{
  SECTION("RFC 3834 Auto-Submitted, vacation text mentioning delays")
  {
    CHECK_FALSE(parse_report(text_message(
        "From: kijitora@example.net\nAuto-Submitted: auto-replied\nSubject: Away until May 5\n",
        "I am away. Replies will be delayed; I will retry your request when back.\n"
        "If this message could not be delivered, too bad.\n")));
  }
  SECTION("Exchange Automatic reply")
  {
    CHECK_FALSE(parse_report(
        text_message("From: \"Neko, Nyaan\" <nekonyaan@example.org>\n"
                     "Subject: Automatic reply: Devis\nX-Auto-Response-Suppress: All\n",
                     "I'm out of the office Friday. Delivery of answers is delayed.\n")));
  }
  SECTION("French out-of-office")
  {
    CHECK_FALSE(
        parse_report(text_message("From: Jean <jean@exemple.fr>\n"
                                  "Subject: =?utf-8?q?R=C3=A9ponse_automatique=C2=A0=3A_Devis?=\n",
                                  "Je suis absent jusqu'au 5 mai. Votre message sera trait\xC3\xA9 "
                                  "\xC3\xA0 mon retour ; l'adresse introuvable sera corrig\xC3\xA9"
                                  "e.\n")));
  }
}

TEST_CASE("dsn: feedback reports, MDNs, success notices and ordinary mail are not bounces",
          "[dsn][not-bounce]")
{
  SECTION("ARF feedback report")
  {
    CHECK_FALSE(parse_report(
        "From: feedback@arf.example\nSubject: FW: Earn money\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\n\n"
        "--F\nContent-Type: text/plain\n\nThis is an abuse report. 550 5.7.1 spam\n\n"
        "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n\n"
        "--F\nContent-Type: message/rfc822\n\nFrom: spammer@example.net\nSubject: Earn money\n\n"
        "Undelivered Mail. user unknown\n\n--F--\n"));
  }
  SECTION("MDN")
  {
    CHECK_FALSE(parse_report(
        "From: Joe <joe@example.com>\nSubject: Disposition notification\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"M\"\n\n"
        "--M\nContent-Type: text/plain\n\nThe message was displayed.\n\n"
        "--M\nContent-Type: message/disposition-notification\n\n"
        "Final-Recipient: rfc822; joe@example.com\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n\n--M--\n"));
  }
  SECTION("success notice without a delivery-status part")
  {
    CHECK_FALSE(
        parse_report(text_message("From: Mail Delivery Subsystem <mailer-daemon@mx.example>\n"
                                  "Subject: Delivery Status Notification (Success)\n",
                                  "Your message was successfully delivered to bob@remote.example.\n"
                                  "250 2.0.0 OK\n")));
  }
  SECTION("ordinary mail, and a message forwarding a bounce as an attachment")
  {
    CHECK_FALSE(parse_report(text_message("From: Alice <alice@example.org>\nSubject: Lunch\n",
                                          "See you at 12:45:50. Room 550, 4.2.2.1 floor.\n")));
    CHECK_FALSE(parse_report(
        "From: Alice <alice@example.org>\nSubject: original as attachment\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"X\"\n\n"
        "--X\nContent-Type: text/plain\n\nit shouldn't be considered as bounce\n\n"
        "--X\nContent-Type: message/rfc822\n\nFrom: MAILER-DAEMON@mx.example\n"
        "Subject: Undelivered Mail Returned to Sender\n\n550 5.1.1 user unknown\n\n--X--\n"));
  }
}

// ---------------------------------------------------------------------------------
// Garbage

TEST_CASE("dsn: garbage never throws and is not a bounce", "[dsn][robustness]")
{
  std::string nested = "Content-Type: multipart/mixed; boundary=\"b0\"\n\n";
  for (int i = 0; i < 300; ++i) {
    nested += "--b" + std::to_string(i) + "\nContent-Type: multipart/mixed; boundary=\"b" +
              std::to_string(i + 1) + "\"\n\n";
  }
  std::string binary;
  for (int i = 0; i < 4096; ++i) {
    binary.push_back(static_cast<char>((i * 7919) & 0xFF));
  }
  const std::vector<std::string> inputs = {
      "",
      std::string("\0\0\0", 3),
      "\n\n\n",
      "not a header line at all",
      "Subject: x\n",
      std::string(1 << 20, 'A'),
      binary,
      nested,
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\n"
      "Content-Type: message/delivery-status\n\nFinal-Recipient: utf-8; \\x{",
      "Content-Type: multipart/report; boundary=\"B\"\n\n--B\nContent-Type: "
      "message/delivery-status\n"
      "Content-Transfer-Encoding: base64\n\n!!!!====",
  };
  for (const std::string& in : inputs) {
    INFO("input of " << in.size() << " bytes");
    std::optional<Report> r;
    REQUIRE_NOTHROW(r = parse_report(in));
    if (r) {
      for (const auto& rcpt : r->recipients) {
        CHECK(valid_utf8(rcpt.final_recipient));
        CHECK(valid_utf8(rcpt.diagnostic_code));
      }
    }
  }
  CHECK_FALSE(parse_report(""));
  CHECK_FALSE(parse_report(std::string(1 << 20, 'A')));
  CHECK_FALSE(parse_report(binary));
  CHECK_FALSE(parse_report(nested));
}

TEST_CASE("dsn: event kinds", "[dsn]")
{
  CHECK(pli::dsn::event_kind_for(Action::delivered) == "delivered");
  CHECK(pli::dsn::event_kind_for(Action::relayed) == "delivered");
  CHECK(pli::dsn::event_kind_for(Action::expanded) == "delivered");
  CHECK(pli::dsn::event_kind_for(Action::failed) == "failed");
  CHECK(pli::dsn::event_kind_for(Action::delayed) == "delayed");
  CHECK(pli::dsn::event_kind_for(Action::unknown).empty());
}

// ---------------------------------------------------------------------------------
// Corpus: dsn/expected.tsv (RFC 3464 rows must agree; the rest is measured)

TEST_CASE("dsn: corpus", "[corpus]")
{
  const char* env = std::getenv("PLI_CORPUS_DIR");
  std::error_code ec;
  if (env == nullptr || !fs::is_regular_file(fs::path(env) / "dsn" / "expected.tsv", ec)) {
    WARN("PLI_CORPUS_DIR unset or without dsn/expected.tsv: corpus test skipped");
    return;
  }
  const fs::path dir = fs::path(env) / "dsn";

  // Every file parses without crashing; keep the results.
  std::map<std::string, std::optional<Report>> results;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name == "expected.tsv" || !entry.is_regular_file()) {
      continue;
    }
    INFO("file " << name);
    REQUIRE_NOTHROW(results[name] = parse_report(read_file(entry.path())));
  }

  // Files that are not bounces give no report or at least no failed event.
  for (const auto& [name, report] : results) {
    bool negative = name.rfind("sisimai-not-", 0) == 0 || name.rfind("sisimai-arf-", 0) == 0 ||
                    name.rfind("sisimai-rfc3834-", 0) == 0;
    if (!negative || !report) {
      continue;
    }
    INFO("not a bounce: " << name);
    for (const auto& rcpt : report->recipients) {
      CHECK(event_kind_for(rcpt.action).empty()); // no delivery event from it
    }
  }

  std::ifstream tsv(dir / "expected.tsv");
  std::string line;
  std::getline(tsv, line);
  std::vector<std::string> columns;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, '\t')) {
      columns.push_back(c);
    }
  }
  auto col = [&](const std::vector<std::string>& row, const std::string& name) -> std::string {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (columns[i] == name) {
        return i < row.size() ? row[i] : std::string();
      }
    }
    FAIL("expected.tsv has no column " << name);
    return {};
  };
  const std::vector<std::string> standard = {"failed", "delayed", "delivered", "relayed",
                                             "expanded"};
  auto is_standard = [&](const std::string& a) {
    return std::find(standard.begin(), standard.end(), a) != standard.end();
  };

  int action_total = 0, action_ok = 0, status_total = 0, status_ok = 0, rcpt_total = 0, rcpt_ok = 0;
  int other_rows = 0, bounce_rows = 0, bounce_failed = 0, bounce_delayed = 0, bounce_missed = 0,
      not_bounce_rows = 0, not_bounce_ok = 0, inferred_rows = 0, unrated = 0, class_total = 0,
      class_ok = 0;
  while (std::getline(tsv, line)) {
    if (line.empty()) {
      continue;
    }
    std::vector<std::string> row;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, '\t')) {
      row.push_back(cell);
    }
    const std::string file = col(row, "file");
    INFO("row " << file << " #" << col(row, "rcpt_index"));
    auto it = results.find(file);
    REQUIRE(it != results.end());
    const std::optional<Report>& report = it->second;
    std::size_t index = 0;
    if (std::string idx = col(row, "rcpt_index"); !idx.empty()) {
      index = static_cast<std::size_t>(std::max(1, std::atoi(idx.c_str())) - 1);
    }
    const std::string expected_action = col(row, "action");
    const std::string basis = col(row, "basis");
    const std::string reason = col(row, "reason_by_sisimai");

    if (col(row, "is_rfc3464") == "yes") {
      const RecipientReport* rcpt = nullptr;
      if (report && index < report->recipients.size()) {
        rcpt = &report->recipients[index];
      }
      if (is_standard(expected_action)) {
        ++action_total;
        CHECK((rcpt != nullptr && action_name(rcpt->action) == expected_action));
        action_ok += (rcpt != nullptr && action_name(rcpt->action) == expected_action) ? 1 : 0;
      }
      if (basis.find("status=dsn") != std::string::npos) {
        ++status_total;
        CHECK((rcpt != nullptr && rcpt->status == col(row, "status")));
        status_ok += (rcpt != nullptr && rcpt->status == col(row, "status")) ? 1 : 0;
      }
      if (!col(row, "final_recipient").empty()) {
        ++rcpt_total;
        CHECK((rcpt != nullptr && rcpt->final_recipient == col(row, "final_recipient")));
        rcpt_ok +=
            (rcpt != nullptr && rcpt->final_recipient == col(row, "final_recipient")) ? 1 : 0;
      }
      continue;
    }

    // Not RFC 3464: compare our failed/delayed outcome with sisimai's reason.
    ++other_rows;
    std::string ours;
    std::string our_status;
    if (report && !report->recipients.empty()) {
      const auto& r = report->recipients[std::min(index, report->recipients.size() - 1)];
      ours = action_name(r.action);
      our_status = r.status;
      inferred_rows += report->inferred ? 1 : 0;
    }
    // The class of the verdict (permanent 5.x.x / transient 4.x.x) against sisimai_status.
    if (const std::string ss = col(row, "sisimai_status");
        !ss.empty() && (ss[0] == '4' || ss[0] == '5')) {
      ++class_total;
      char our_class = !our_status.empty() && (our_status[0] == '4' || our_status[0] == '5')
                           ? our_status[0]
                       : ours == "failed"  ? '5'
                       : ours == "delayed" ? '4'
                                           : '?';
      class_ok += our_class == ss[0] ? 1 : 0;
    }
    bool sisimai_not_bounce = reason == "feedback" || reason == "vacation" ||
                              (reason.empty() && col(row, "sisimai_class") == "not-bounce") ||
                              (reason.empty() && file.rfind("mimekit-", 0) == 0);
    if (sisimai_not_bounce) {
      ++not_bounce_rows;
      not_bounce_ok += (ours.empty() || ours == "unknown") ? 1 : 0;
    } else if (reason.empty() || reason == "delivered") {
      ++unrated; // no expectation, or a success (never inferred from text)
    } else {
      ++bounce_rows;
      if (ours == "failed") {
        ++bounce_failed;
      } else if (ours == "delayed") {
        ++bounce_delayed;
      } else {
        ++bounce_missed;
      }
    }
  }
  WARN("corpus RFC 3464 rows: action " << action_ok << "/" << action_total << ", status "
                                       << status_ok << "/" << status_total << ", final_recipient "
                                       << rcpt_ok << "/" << rcpt_total);
  WARN("corpus non-RFC 3464 rows: "
       << other_rows << " (" << inferred_rows << " inferred from text); "
       << "sisimai bounces " << bounce_rows << ": failed " << bounce_failed << ", delayed "
       << bounce_delayed << ", missed " << bounce_missed << "; not bounces " << not_bounce_ok << "/"
       << not_bounce_rows << " returned no event; " << unrated << " rows unrated");
  WARN("corpus non-RFC 3464 rows with a sisimai_status: verdict class agrees for "
       << class_ok << "/" << class_total);
  // The floors of issue 4: RFC 3464 fields agree everywhere; 85% for the verdict class.
  CHECK(action_ok == action_total);
  CHECK(status_ok == status_total);
  CHECK(rcpt_ok == rcpt_total);
  REQUIRE(class_total > 100);
  CHECK(class_ok * 100 >= class_total * 85);
  CHECK(not_bounce_ok == not_bounce_rows);
}
