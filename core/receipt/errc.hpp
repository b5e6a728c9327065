// The receipt module's errors (util/result.hpp: each module has its own typed codes).
#pragma once

#include "core/util/result.hpp"

namespace pli::receipt {

enum class Errc
{
  exists = 1,  // a key pair already exists and may not be replaced (Overwrite::refuse)
  io = 2,      // a key or receipt file that cannot be read, written or synced
  render = 3,  // libharu failed to build the PDF
  bad_pdf = 4, // a file that is not a PDF this module reads (pdf_reader.hpp)
};

} // namespace pli::receipt

PLI_ERROR_CODE_ENUM(pli::receipt, Errc, "pli.receipt", "already exists", "file error",
                    "cannot render the PDF", "unreadable PDF");
