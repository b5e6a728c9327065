// Reads back what `pli verify` checks in a receipt PDF, with qpdf (ISO 32000-1): the files
// embedded in the document — only those reachable from the catalog count: the
// /Names /EmbeddedFiles name tree and the /FileAttachment annotations of the pages, each a
// /Filespec with its /EF stream — and the SHA-256 of each page's content, the page binding
// of pages.json (signed_evidence.hpp). A file spec or stream lying elsewhere in the file,
// unreferenced, is ignored. qpdf reads damaged files as viewers do (it rebuilds a broken
// cross-reference table in one pass), in time linear in the file's size.
// Every decoded stream is bounded (PdfLimits); a larger one is an error, never truncated.
#pragma once

#include "core/util/result.hpp"

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace pli::receipt {

struct PdfLimits
{
  std::size_t max_file_bytes = 64U << 20U;    // the PDF itself
  std::size_t max_decoded_bytes = 16U << 20U; // one embedded file or one page's content
  std::size_t max_total_decoded = 64U << 20U; // everything decoded from one file
  std::size_t max_pages = 10000;              // pages whose content is hashed
  std::size_t max_embedded_files = 64;        // embedded files taken
};

struct PdfContents
{
  // name (/UF, else /F) -> decoded bytes.
  std::map<std::string, std::string> files;
  // Per page, in page order: hex SHA-256 of its decoded content streams, concatenated in
  // the order of /Contents (no separator).
  std::vector<std::string> page_content_sha256;
  // Bytes qpdf read from the input (every read and every end-of-line scan counted): a
  // measure of the parser's work that does not depend on the machine's speed (tests).
  std::size_t bytes_read = 0;
};

// Reads `pdf`. Errors (Errc::bad_pdf, errc.hpp), one sentence each: not a PDF qpdf can read (with
// its reason), a file or page over `limits`, a stream that does not decode, two embedded files with
// the same name, an embedded file without a name or stream.
util::Result<PdfContents> read_pdf(const std::string& pdf, const PdfLimits& limits = {});

// The embedded files of read_pdf alone (same errors).
util::Result<std::map<std::string, std::string>> embedded_files(const std::string& pdf);

} // namespace pli::receipt
