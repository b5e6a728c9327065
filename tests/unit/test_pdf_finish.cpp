// receipt::finish_pdf: what libharu's public API cannot do, done on its output with qpdf
// (the embedded files, the font's ToUnicode, CIDToGIDMap and subset tag, PDF 1.4).
#include "core/receipt/errc.hpp"
#include "core/receipt/keys.hpp"
#include "core/receipt/pdf.hpp"
#include "core/receipt/pdf_finish.hpp"
#include "core/receipt/pdf_reader.hpp"
#include "core/util/crypto.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <qpdf/Buffer.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFWriter.hh>

#include <string>

using namespace pli;

namespace {

std::string stream_data(QPDFObjectHandle stream)
{
  auto buf = stream.getStreamData(qpdf_dl_generalized);
  return {reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize()};
}

// An empty PDF 1.3 written by qpdf.
std::string empty_pdf()
{
  QPDF q;
  q.emptyPDF();
  QPDFWriter w(q);
  w.setOutputMemory();
  w.setStaticID(true);
  w.write();
  auto buf = w.getBufferSharedPointer();
  return {reinterpret_cast<const char*>(buf->getBuffer()), buf->getSize()};
}

// The document's Type0 fonts.
std::vector<QPDFObjectHandle> type0_fonts(QPDF& q)
{
  std::vector<QPDFObjectHandle> out;
  for (auto& obj : q.getAllObjects()) {
    if (obj.isDictionary() && obj.getKey("/Type").isNameAndEquals("/Font") &&
        obj.getKey("/Subtype").isNameAndEquals("/Type0")) {
      out.push_back(obj);
    }
  }
  return out;
}

} // namespace

TEST_CASE("finish_pdf: the identity ToUnicode covers the blocks up to the highest character",
          "[receipt][pdf_finish]")
{
  const std::string latin = receipt::identity_to_unicode(0xE9);
  CHECK(latin.find("1 beginbfrange\n<0000> <00FF> <0000>\nendbfrange") != std::string::npos);
  CHECK(latin.find("<0100>") == std::string::npos);
  const std::string euro = receipt::identity_to_unicode(0x20AC);
  CHECK(euro.find("<2000> <20FF> <2000>") != std::string::npos);
  CHECK(euro.find("<2100>") == std::string::npos);
  // The whole BMP without the surrogates: 248 blocks, in groups of at most 100.
  const std::string bmp = receipt::identity_to_unicode(0xFFFF);
  CHECK(bmp.find("100 beginbfrange") != std::string::npos);
  CHECK(bmp.find("48 beginbfrange") != std::string::npos);
  CHECK(bmp.find("<D800>") == std::string::npos);
  CHECK(bmp.find("<DF00>") == std::string::npos);
  CHECK(bmp.find("<FF00> <FFFF> <FF00>") != std::string::npos);
  CHECK(bmp.find("begincidrange") == std::string::npos);
}

TEST_CASE("finish_pdf: files embedded uncompressed in name order, PDF 1.4, same bytes each time",
          "[receipt][pdf_finish]")
{
  receipt::PdfFinish f;
  f.files = {{"a.json", "application/json", "{\"a\":1}"},
             {"b.sig", "application/json", "{\"sig\":\"xyz\"}"}};
  auto out = receipt::finish_pdf(empty_pdf(), f);
  REQUIRE(out.ok());
  CHECK(out->rfind("%PDF-1.4", 0) == 0);
  CHECK(out->find("{\"sig\":\"xyz\"}") != std::string::npos); // not compressed
  auto files = receipt::embedded_files(*out);
  REQUIRE(files.ok());
  CHECK(*files == std::map<std::string, std::string>{{"a.json", "{\"a\":1}"},
                                                     {"b.sig", "{\"sig\":\"xyz\"}"}});
  QPDF q;
  q.processMemoryFile("out", out->data(), out->size());
  auto names = q.getRoot().getKey("/Names").getKey("/EmbeddedFiles").getKey("/Names");
  REQUIRE(names.isArray());
  REQUIRE(names.getArrayNItems() == 4);
  CHECK(names.getArrayItem(0).getUTF8Value() == "a.json");
  CHECK(names.getArrayItem(2).getUTF8Value() == "b.sig");
  auto ef = names.getArrayItem(0).isString() ? names.getArrayItem(1).getKey("/EF").getKey("/F")
                                             : QPDFObjectHandle::newNull();
  REQUIRE(ef.isStream());
  CHECK(ef.getDict().getKey("/Filter").isNull());
  CHECK(ef.getDict().getKey("/Subtype").getName() == "/application/json");
  CHECK(receipt::finish_pdf(empty_pdf(), f).value() == *out); // a deterministic /ID
}

TEST_CASE("finish_pdf: a file that is not a PDF is a render error", "[receipt][pdf_finish]")
{
  auto out = receipt::finish_pdf("not a pdf", {});
  REQUIRE_FALSE(out.ok());
  CHECK(out.error().code == receipt::Errc::render);
  CHECK(out.error().message.find("cannot finish the receipt PDF") != std::string::npos);
}

TEST_CASE("finish_pdf: a receipt's font is tagged, its maps cut to the characters drawn",
          "[receipt][pdf_finish]")
{
  pli::test::TempDir dir;
  auto kp = receipt::generate_keys((dir.path / "k").string(), receipt::Overwrite::refuse);
  REQUIRE(kp.ok());
  receipt::Exchange x;
  x.message.set_id("m1");
  x.message.set_subject("Attribution — « lot n°2 », œuvre à 5 €");
  x.message.set_sender("alice@buyer.example");
  x.message.set_original_sha256(util::sha256_hex("original"));
  x.delivery.set_id("d1");
  x.delivery.set_message("m1");
  x.delivery.set_recipient("bob@remote.example");
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  auto r = receipt::make_receipt(x, o, kp.value());
  REQUIRE(r.ok());
  REQUIRE_FALSE(r->whole_font);
  QPDF q;
  q.processMemoryFile("r", r->pdf.data(), r->pdf.size());
  auto fonts = type0_fonts(q);
  REQUIRE(fonts.size() == 1);
  auto font = fonts.front();
  CHECK(font.getKey("/BaseFont").getName().rfind("/PLIDJV+DejaVuSans", 0) == 0);
  auto cid = font.getKey("/DescendantFonts").getArrayItem(0);
  CHECK(cid.getKey("/BaseFont").getName().rfind("/PLIDJV+DejaVuSans", 0) == 0);
  CHECK(cid.getKey("/FontDescriptor").getKey("/FontName").getName().rfind("/PLIDJV+", 0) == 0);
  // The highest character drawn is U+20AC (€): the map stops there, 2 bytes per CID.
  CHECK(stream_data(cid.getKey("/CIDToGIDMap")).size() == 2 * (0x20AC + 1));
  CHECK(stream_data(font.getKey("/ToUnicode")) == receipt::identity_to_unicode(0x20AC));
  // Compressed, the font file too.
  auto file = cid.getKey("/FontDescriptor").getKey("/FontFile2");
  REQUIRE(file.isStream());
  CHECK(file.getDict().getKey("/Filter").isNameAndEquals("/FlateDecode"));
  CHECK(stream_data(file).rfind(std::string("\0\1\0\0", 4), 0) == 0); // a TrueType font
  CHECK(cid.getKey("/CIDToGIDMap").getDict().getKey("/Filter").isNameAndEquals("/FlateDecode"));
  CHECK(font.getKey("/ToUnicode").getDict().getKey("/Filter").isNameAndEquals("/FlateDecode"));
}
