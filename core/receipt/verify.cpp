#include "core/receipt/verify.hpp"

#include "core/receipt/pdf_reader.hpp"
#include "core/receipt/signed_evidence.hpp"
#include "core/util/crypto.hpp"

#include <fmt/format.h>

namespace pli::receipt {

namespace {

using nlohmann::json;

void state_unchecked(ReceiptCheck& c, bool fr)
{
  c.not_checked.push_back(
      fr ? "le fichier PDF dans son ensemble n'est pas signé : seules les données signées "
           "(evidence.json) et le contenu des pages sont vérifiés"
         : "the PDF file as a whole is not signed: only the signed evidence (evidence.json) and "
           "the pages' content are checked");
  if (c.pages == PageBinding::absent) {
    c.not_checked.push_back(
        fr ? "cet accusé de réception est antérieur à la liaison des pages : ses pages ne sont "
             "pas liées à la preuve, seule la preuve signée fait foi (comparez la page aux "
             "données affichées ici)"
           : "this receipt predates page binding: its pages are not bound to the evidence, only "
             "the signed evidence is authoritative (compare the page with the data shown here)");
  } else {
    c.not_checked.push_back(
        fr ? "les polices, images, annotations et autres ressources des pages, ainsi que les "
             "métadonnées du document, ne sont pas couvertes par la liaison des pages"
           : "the fonts, images, annotations and other resources of the pages, and the "
             "document's metadata, are not covered by the page binding");
  }
  c.not_checked.push_back(fr ? "les autres fichiers joints au document sont ignorés"
                             : "any other file attached to the document is ignored");
}

// Checks the page binding of a format-2 evidence; returns the reason when it fails.
std::string check_pages(const PdfContents& pdf, const std::string& evidence, const KeyPair& key,
                        bool fr)
{
  auto pj = pdf.files.find("pages.json");
  auto ps = pdf.files.find("pages.sig");
  if (pj == pdf.files.end() || ps == pdf.files.end()) {
    return fr ? "la preuve déclare ses pages liées (pages.json) mais le document ne porte pas "
                "cette liaison : les pages ont été remplacées ou la liaison retirée"
              : "the evidence says its pages are bound (pages.json) but the document carries no "
                "page binding: the pages were replaced or the binding removed";
  }
  if (auto why = check_signature("pages.json", pj->second, ps->second, key); !why.empty()) {
    return why;
  }
  json b;
  try {
    b = json::parse(pj->second);
  } catch (const std::exception&) {
    b = nullptr;
  }
  if (!b.is_object() || b.value("kind", "") != "pli-receipt-pages" || !b.contains("pages") ||
      !b["pages"].is_array()) {
    return fr ? "la liaison des pages (pages.json) est mal formée"
              : "the page binding (pages.json) is malformed";
  }
  if (b.value("evidence_sha256", "") != util::sha256_hex(evidence)) {
    return fr ? "la liaison des pages appartient à une autre preuve"
              : "the page binding belongs to another evidence";
  }
  const auto& signed_pages = b["pages"];
  if (signed_pages.size() != pdf.page_content_sha256.size()) {
    return fr ? fmt::format("la liaison signée compte {} page(s), le document en a {}",
                            signed_pages.size(), pdf.page_content_sha256.size())
              : fmt::format("the signed binding counts {} page(s), the document has {}",
                            signed_pages.size(), pdf.page_content_sha256.size());
  }
  for (std::size_t i = 0; i < signed_pages.size(); ++i) {
    if (!signed_pages[i].is_string() ||
        signed_pages[i].get<std::string>() != pdf.page_content_sha256[i]) {
      return fr ? fmt::format("le contenu de la page {} n'est pas celui qui a été signé : la page "
                              "a été modifiée ou remplacée",
                              i + 1)
                : fmt::format("the content of page {} is not the signed one: the page was "
                              "altered or replaced",
                              i + 1);
    }
  }
  return {};
}

} // namespace

const char* code(PageBinding b)
{
  switch (b) {
  case PageBinding::bound:
    return "bound";
  case PageBinding::absent:
    return "absent";
  case PageBinding::mismatch:
    return "mismatch";
  }
  return "absent";
}

ReceiptCheck check_receipt(const std::string& pdf, const KeyPair& key, model::Locale locale)
{
  const bool fr = locale == model::Locale::fr;
  ReceiptCheck c;
  auto read = read_pdf(pdf);
  if (!read) {
    c.reason = read.error().message;
    state_unchecked(c, fr);
    return c;
  }
  c.page_count = read->page_content_sha256.size();
  auto ev = read->files.find("evidence.json");
  auto sig = read->files.find("evidence.sig");
  if (ev == read->files.end() || sig == read->files.end()) {
    c.reason = fr ? "le document ne contient pas de preuve signée (evidence.json et "
                    "evidence.sig)"
                  : "the document holds no signed evidence (evidence.json and evidence.sig)";
    state_unchecked(c, fr);
    return c;
  }
  auto v = verify_evidence(ev->second, sig->second, key);
  c.kid = v.kid;
  c.code = v.code;
  c.evidence = v.evidence;
  if (!v.valid) {
    c.reason = v.reason;
    state_unchecked(c, fr);
    return c;
  }
  const auto& e = v.evidence;
  const bool bound = (e.contains("page_binding") && e["page_binding"].is_string() &&
                      e["page_binding"].get<std::string>() == "pages.json") ||
                     (e.contains("format_version") && e["format_version"].is_number_integer() &&
                      e["format_version"].get<int>() >= 2);
  if (bound) {
    if (auto why = check_pages(*read, ev->second, key, fr); !why.empty()) {
      c.pages = PageBinding::mismatch;
      c.reason = why;
      state_unchecked(c, fr);
      return c;
    }
    c.pages = PageBinding::bound;
  }
  c.valid = true;
  state_unchecked(c, fr);
  return c;
}

} // namespace pli::receipt
