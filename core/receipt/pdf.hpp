// The acknowledgment-of-receipt PDF: drawn with libharu 2.3.0's public API (hpdf.h), then
// finished with qpdf (pdf_finish.hpp: embedded files, ToUnicode, font map).
//
// One page or more of A4 with the organisation, the title, the consultation, the message
// type, subject, sender and recipient, the delivery's timeline as the procurement platform
// shows it (with the DSN evidence and the reader's IP address), the SHA-256 of the original
// and of each attachment, and a verification code; "Page n / N" when it runs over a page.
// DejaVuSans is embedded (UTF-8 encoder, BMP only: other characters print as '?'): the
// compiled-in subset (font.hpp) when it covers the receipt's text, which makes a receipt
// several times cheaper to build, else the whole font from `font_path`.
// The signed evidence (signed_evidence.hpp) is embedded as uncompressed files,
// `evidence.json` and `evidence.sig`, with the page binding `pages.json` and `pages.sig`
// (the SHA-256 of each page's decoded content, read back from libharu's output by
// pdf_reader.hpp as `pli verify` reads it; /Filespec with /UF, /EmbeddedFile streams in the
// catalog's /EmbeddedFiles name tree),
// so that pdf_reader.hpp (and pdfdetach) read them back byte for byte.
#pragma once

#include "core/receipt/keys.hpp"
#include "core/receipt/timeline.hpp"
#include "core/util/durable_file.hpp"

#include <string>
#include <utility>
#include <vector>

namespace pli::receipt {

enum class FontChoice
{
  subset_when_covered, // the compiled-in subset, the whole font when the text needs it
  whole_font           // always the whole font (font_path)
};

struct ReceiptOptions
{
  std::string organisation;
  model::Locale locale = model::Locale::fr;
  std::string timezone = "Europe/Paris";
  util::Micros issued_at = 0;
  std::string font_path = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"; // the whole font
  FontChoice font = FontChoice::subset_when_covered;
};

struct Receipt
{
  std::string pdf;               // the file's bytes
  std::string evidence;          // evidence.json as embedded
  std::string signature;         // evidence.sig as embedded
  std::string binding;           // pages.json as embedded (the page binding)
  std::string binding_signature; // pages.sig as embedded
  std::string code;              // verification code
  int pages = 0;
  bool whole_font = false; // drawn with the whole font (font_path), not the subset
};

// Builds the receipt of `x.delivery`, signed with `key`. Errors (Errc::render): libharu
// failures, with the libharu error number, e.g. a missing font file (font_path, read only
// when the subset does not cover the text or FontChoice::whole_font).
util::Result<Receipt> make_receipt(const Exchange& x, const ReceiptOptions& options,
                                   const KeyPair& key);

// Writes `data` to PATH through a temporary file in the same directory (fsync, rename,
// fsync of the directory: util::write_file), 0600. Errors (Errc::io): util::write_file's.
util::Status write_file_atomic(const std::string& path, const std::string& data);

// Many files written as write_file_atomic does, all or none, with one syncfs(2) for all of
// them instead of one fsync each (receipts in bulk): add() writes each to a temporary file
// beside its path; commit() makes them durable (syncfs), renames them into place and syncs
// their directory. Temporary files not committed are removed by the destructor.
class FileBatch
{
public:
  FileBatch() = default;
  FileBatch(const FileBatch&) = delete;
  FileBatch& operator=(const FileBatch&) = delete;
  ~FileBatch() = default;
  // Errors (Errc::io): the temporary file cannot be created or written.
  util::Status add(const std::string& path, const std::string& data);
  // Errors (Errc::io): syncfs, rename or the directory's fsync failed (files renamed before
  // the failure stay).
  util::Status commit();

private:
  std::vector<util::PendingFile> m_pending; // removed when not committed
};

} // namespace pli::receipt
