// Reads back the files embedded in a receipt PDF (`evidence.json`, `evidence.sig`), by
// itself: the classic cross-reference table (with /Prev chains of incremental updates;
// a scan for "N G obj" when there is no usable table), /Filespec dictionaries with their
// /EF /F stream, and uncompressed /EmbeddedFile streams as pdf.cpp writes them.
// Anything else (a filtered stream, a missing object, a length that does not end at
// "endstream") is an error: `pli verify` then reports the receipt as unreadable.
#pragma once

#include "core/util/result.hpp"

#include <map>
#include <string>

namespace pli::receipt {

// name (from /UF, else /F) -> bytes. Errors (code 1) say what is wrong in one sentence;
// two files with the same name are an error.
util::Result<std::map<std::string, std::string>> embedded_files(const std::string& pdf);

} // namespace pli::receipt
