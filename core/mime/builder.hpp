// The one builder of the mails pli writes itself (RFC 5322, RFC 2045-2047): the notice, the
// notifications to buyers, the reply notices and the sign-in links all go through it.
//
// It lays out the header block in a fixed order (From, To, Subject, Date, Message-ID, the
// extra headers in the order given, MIME-Version, Content-Language) and the body as one
// text/plain part, a multipart/alternative of text and HTML, or a multipart/mixed of text and
// attachments, each part base64 in lines of 76 characters. What needs care in a header is
// left to GMime: quoting or encoding a display name (RFC 5322 section 3.4, RFC 2047),
// encoded words for a non-ASCII Subject, folding a Subject line longer than 78 characters
// (RFC 5322 section 2.2.3), RFC 2231 parameters for a file name that is not plain ASCII. Header
// text from untrusted sources cannot start a new header: CR, LF and TAB become spaces in every
// value the builder writes itself (addresses, Message-ID, extra headers).
#pragma once

#include "core/util/time.hpp"

#include <string>
#include <utility>
#include <vector>

namespace pli::mime {

enum class Layout
{
  text,        // one text/plain part
  alternative, // multipart/alternative: text/plain then text/html
  mixed,       // multipart/mixed: text/plain then the attachments (maybe none)
};

struct MailAttachment
{
  std::string content_type; // "application/pdf"
  std::string filename;     // UTF-8
  std::string data;
};

struct OutgoingMail
{
  // From: a mailbox (display name in UTF-8, may be empty) when `from_address` is set;
  // otherwise `from_header`, an address header as somebody else wrote it (the buyer's From
  // on the notice), re-encoded by GMime when it holds raw 8-bit text.
  std::string from_display;
  std::string from_address;
  std::string from_header;
  std::string to;      // an address, written "<to>"
  std::string subject; // UTF-8
  util::Micros date = 0;
  std::string message_id;                                         // without <>
  std::vector<std::pair<std::string, std::string>> extra_headers; // name, ASCII value
  std::string language;                                           // Content-Language
  Layout layout = Layout::text;
  std::string text;                        // UTF-8
  std::string html;                        // UTF-8, Layout::alternative only
  std::vector<MailAttachment> attachments; // Layout::mixed only
  // The boundary is "=_pli_" + boundary_tag + 24 random hex digits.
  std::string boundary_tag;
};

// The complete message, CRLF line endings, headers 7-bit unless an address is itself
// internationalised (RFC 6532). Throws std::invalid_argument when `html` is set outside
// Layout::alternative or attachments outside Layout::mixed.
std::string build(const OutgoingMail& mail);

// A mailbox for an address header, as GMime writes it (RFC 5322 section 3.4): the display
// name `display` (UTF-8, on one line) as an atom sequence, a quoted-string when it holds
// specials such as ',' or '"', or RFC 2047 encoded words when it is not ASCII; then
// "<address>". An empty display name gives "<address>". CRLF line endings. Never fails.
std::string mailbox(const std::string& display, const std::string& address);

// An address header value as somebody else wrote it: unchanged when ASCII, otherwise
// re-written by GMime with RFC 2047 encoded words (unchanged when GMime finds no address in
// it). CRLF line endings. Never fails.
std::string ascii_address_header(const std::string& raw);

// RFC 2047 encoding of an unstructured header value when it is not plain ASCII (GMime);
// returned unchanged when it is. Never fails.
std::string encode_header(const std::string& utf8);

// The header line "name: value" (without its final CRLF), folded by GMime with CRLF when it
// is longer than 78 characters (RFC 5322 section 2.2.3); unchanged otherwise. `value` must
// already be 7-bit (see encode_header). Never fails.
std::string fold_header(const std::string& name, const std::string& value);

// base64 of `data` in lines of 76 characters, CRLF-terminated.
std::string base64_lines(const std::string& data);

} // namespace pli::mime
