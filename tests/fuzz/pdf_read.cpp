// The receipt PDF reader (qpdf: embedded files reachable from the catalog, page content
// hashes) on arbitrary bytes: never a crash, a hang or unbounded memory.
#include "core/receipt/pdf_reader.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const std::string pdf(reinterpret_cast<const char*>(data), size);
  pli::receipt::PdfLimits limits;
  limits.max_decoded_bytes = 1U << 20U; // small bounds: decompression bombs stay cheap
  limits.max_total_decoded = 4U << 20U;
  limits.max_pages = 256;
  (void)pli::receipt::read_pdf(pdf, limits);
  return 0;
}
