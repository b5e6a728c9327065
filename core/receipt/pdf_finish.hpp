// What a receipt PDF needs beyond what libharu's public API (hpdf.h) gives, done on
// libharu's output with qpdf's public API (ISO 32000-1):
// - the embedded files (evidence.json ...), uncompressed, in the catalog's /Names
//   /EmbeddedFiles name tree (§7.11.4; HPDF_AttachFile reads a path and writes it into the
//   PDF);
// - the Type0 font's /ToUnicode replaced by the identity (codes are Unicode code points with
//   libharu's UTF-8 encoder; libharu writes its encoder's CMap, a `begincidrange` that text
//   extractors reject);
// - the font's /CIDToGIDMap cut after the highest character drawn (libharu writes all
//   65,536 CIDs: 128 KB to inflate in every viewer);
// - the subset tag of the font's names (PLIDJV+DejaVuSans for the compiled-in subset);
// - the font's streams compressed (FlateDecode): its file when libharu left it
//   uncompressed, the map and the ToUnicode;
// - PDF 1.4 at least (embedded files).
#pragma once

#include "core/util/result.hpp"

#include <string>
#include <vector>

namespace pli::receipt {

struct EmbeddedFile
{
  std::string name;       // its /F and /UF, and its key in the name tree
  std::string media_type; // its /Subtype, e.g. "application/json"
  std::string data;
};

struct PdfFinish
{
  char32_t max_code_point = 0xFFFF; // the highest character drawn
  std::string font_tag;             // six capitals replacing libharu's tag; empty: kept
  std::vector<EmbeddedFile> files;  // in name order
};

// A ToUnicode CMap mapping every code up to the block of `max_code_point` to itself
// (surrogates aside).
std::string identity_to_unicode(char32_t max_code_point);

// `pdf` (libharu's output) with `f` applied, written again by qpdf (streams as they were,
// no object streams, a deterministic /ID). Errors (receipt::Errc::render): a PDF qpdf
// cannot read, a Type0 font without /CIDToGIDMap.
util::Result<std::string> finish_pdf(const std::string& pdf, const PdfFinish& f);

} // namespace pli::receipt
