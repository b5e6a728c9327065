// The milter's MIME path on arbitrary bytes: the original is read with GMime (bodies,
// attachments, names, hashes), its subject's tags are read, and a notice is written from
// what was read (RFC 2047 headers, templates). Nothing may crash, hang or leak.
#include "core/milter/options.hpp"
#include "core/mime/compose.hpp"
#include "core/mime/parse.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  using namespace pli;
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  const auto parsed = mime::parse_message(raw);
  const auto opts = milter::parse_client_options(parsed.subject, "");
  mime::NoticeInput in;
  in.organisation = "Région Exemple";
  in.from_header_raw = mime::encode_header(parsed.from);
  in.sender_display = parsed.from;
  in.recipient = "bob@remote.example";
  in.subject = opts.subject;
  in.link = "https://pli.example.org/m/token";
  in.expires_at = 1700000000000000;
  in.now = 1690000000000000;
  in.message_id = "dfuzz@example.org";
  if (opts.reference) {
    in.consultation = mime::ConsultationInfo{*opts.reference, parsed.subject, "", ""};
  }
  const std::string notice = mime::compose_notice(in);
  // The notice is itself a message pli can read back, with the subject it was given.
  const auto back = mime::parse_message(notice);
  if (!back.parsed) {
    __builtin_trap();
  }
  return 0;
}
