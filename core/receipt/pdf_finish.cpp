#include "core/receipt/pdf_finish.hpp"

#include "core/receipt/errc.hpp"

#include <fmt/format.h>
#include <qpdf/Buffer.hh>
#include <qpdf/Pl_Buffer.hh>
#include <qpdf/Pl_Flate.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFEFStreamObjectHelper.hh>
#include <qpdf/QPDFEmbeddedFileDocumentHelper.hh>
#include <qpdf/QPDFFileSpecObjectHelper.hh>
#include <qpdf/QPDFWriter.hh>

#include <algorithm>
#include <cctype>
#include <exception>

namespace pli::receipt {

namespace {

std::string deflate(const std::string& data)
{
  Pl_Buffer out("deflated");
  Pl_Flate flate("deflate", &out, Pl_Flate::a_deflate);
  flate.write(reinterpret_cast<const unsigned char*>(data.data()), data.size());
  flate.finish();
  auto buf = out.getBufferSharedPointer();
  return {reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize()};
}

std::string stream_data(QPDFObjectHandle stream)
{
  auto buf = stream.getStreamData(qpdf_dl_generalized);
  return {reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize()};
}

void replace_deflated(QPDFObjectHandle stream, const std::string& data)
{
  stream.replaceStreamData(deflate(data), QPDFObjectHandle::newName("/FlateDecode"),
                           QPDFObjectHandle::newNull());
}

// `key` of `dict` with a subset tag ("/ABCDEF+Name") given `tag` instead.
void retag(QPDFObjectHandle dict, const char* key, const std::string& tag)
{
  if (!dict.isDictionary() || tag.empty()) {
    return;
  }
  auto name = dict.getKey(key);
  if (!name.isName()) {
    return;
  }
  const std::string n = name.getName();
  const bool tagged =
      n.size() > 8 && n[7] == '+' && std::all_of(n.begin() + 1, n.begin() + 7, [](char c) {
        return std::isupper(static_cast<unsigned char>(c));
      });
  if (tagged) {
    dict.replaceKey(key, QPDFObjectHandle::newName("/" + tag + n.substr(7)));
  }
}

// Applies the font changes of `f` to the Type0 font `font`.
util::Status finish_font(QPDFObjectHandle font, const PdfFinish& f)
{
  retag(font, "/BaseFont", f.font_tag);
  if (auto to_unicode = font.getKey("/ToUnicode"); to_unicode.isStream()) {
    replace_deflated(to_unicode, identity_to_unicode(f.max_code_point));
  }
  auto descendants = font.getKey("/DescendantFonts");
  if (!descendants.isArray() || descendants.getArrayNItems() != 1) {
    return util::Error{Errc::render, "libharu's font has no descendant font"};
  }
  auto cid_font = descendants.getArrayItem(0);
  retag(cid_font, "/BaseFont", f.font_tag);
  auto descriptor = cid_font.getKey("/FontDescriptor");
  retag(descriptor, "/FontName", f.font_tag);
  if (descriptor.isDictionary()) {
    if (auto file = descriptor.getKey("/FontFile2");
        file.isStream() && file.getDict().getKey("/Filter").isNull()) {
      replace_deflated(file, stream_data(file));
    }
  }
  auto map = cid_font.getKey("/CIDToGIDMap");
  if (!map.isStream()) {
    return util::Error{Errc::render, "libharu's font has no CIDToGIDMap"};
  }
  // CIDs are the characters' code points: the map up to the highest one drawn is the same
  // map for this document.
  const std::size_t want = 2 * (static_cast<std::size_t>(f.max_code_point) + 1);
  std::string data = stream_data(map);
  if (want < data.size()) {
    data.resize(want);
  }
  replace_deflated(map, data);
  return util::ok_status();
}

} // namespace

std::string identity_to_unicode(char32_t max_code_point)
{
  std::vector<int> highs;
  for (int hi = 0; hi <= static_cast<int>(std::min<char32_t>(max_code_point, 0xFFFF) >> 8); ++hi) {
    if (hi < 0xD8 || hi > 0xDF) { // no surrogates
      highs.push_back(hi);
    }
  }
  std::string c = "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
                  "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
                  "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
                  "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n";
  for (std::size_t i = 0; i < highs.size(); i += 100) {
    std::size_t n = std::min<std::size_t>(100, highs.size() - i);
    c += fmt::format("{} beginbfrange\n", n);
    for (std::size_t j = i; j < i + n; ++j) {
      c += fmt::format("<{0:02X}00> <{0:02X}FF> <{0:02X}00>\n", highs[j]);
    }
    c += "endbfrange\n";
  }
  c += "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n";
  return c;
}

util::Result<std::string> finish_pdf(const std::string& pdf, const PdfFinish& f)
{
  try {
    QPDF q;
    q.setSuppressWarnings(true);
    q.processMemoryFile("receipt", pdf.data(), pdf.size());
    for (auto& obj : q.getAllObjects()) {
      if (obj.isDictionary() && obj.getKey("/Type").isNameAndEquals("/Font") &&
          obj.getKey("/Subtype").isNameAndEquals("/Type0")) {
        if (auto st = finish_font(obj, f); !st) {
          return st.error();
        }
      }
    }
    QPDFEmbeddedFileDocumentHelper files(q);
    for (const auto& e : f.files) {
      auto stream = QPDFEFStreamObjectHelper::createEFStream(q, e.data);
      stream.setSubtype(e.media_type);
      files.replaceEmbeddedFile(e.name,
                                QPDFFileSpecObjectHelper::createFileSpec(q, e.name, stream));
    }
    QPDFWriter w(q);
    w.setOutputMemory();
    w.setCompressStreams(false); // libharu's streams stay as they are, the files uncompressed
    w.setDecodeLevel(qpdf_dl_none);
    w.setObjectStreamMode(qpdf_o_disable);
    w.setMinimumPDFVersion("1.4"); // embedded files
    w.setDeterministicID(true);
    w.write();
    auto buf = w.getBufferSharedPointer();
    return std::string(reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize());
  } catch (const std::exception& e) {
    return util::Error{Errc::render, fmt::format("cannot finish the receipt PDF: {}", e.what())};
  }
}

} // namespace pli::receipt
