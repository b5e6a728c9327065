#include "core/receipt/pdf_reader.hpp"

#include "core/receipt/errc.hpp"
#include "core/util/crypto.hpp"

#include <fmt/format.h>
#include <qpdf/BufferInputSource.hh>
#include <qpdf/InputSource.hh>
#include <qpdf/Pipeline.hh>
#include <qpdf/QPDF.hh>
#include <qpdf/QPDFAnnotationObjectHelper.hh>
#include <qpdf/QPDFEmbeddedFileDocumentHelper.hh>
#include <qpdf/QPDFFileSpecObjectHelper.hh>
#include <qpdf/QPDFObjGen.hh>
#include <qpdf/QPDFPageDocumentHelper.hh>
#include <qpdf/QPDFPageObjectHelper.hh>

#include <memory>
#include <set>
#include <stdexcept>

namespace pli::receipt {

namespace {

util::Error bad(const std::string& what)
{
  return util::Error{Errc::bad_pdf, what};
}

// qpdf's input, with every byte it reads counted (PdfContents::bytes_read).
class CountingSource final : public InputSource
{
public:
  CountingSource(std::shared_ptr<InputSource> in, std::size_t& count)
      : m_in(std::move(in)), m_count(count)
  {
  }
  qpdf_offset_t findAndSkipNextEOL() override
  {
    const qpdf_offset_t before = m_in->tell();
    const qpdf_offset_t r = m_in->findAndSkipNextEOL();
    const qpdf_offset_t after = m_in->tell();
    m_count += after > before ? static_cast<std::size_t>(after - before) : 0;
    return r;
  }
  std::string const& getName() const override { return m_in->getName(); }
  qpdf_offset_t tell() override { return m_in->tell(); }
  void seek(qpdf_offset_t offset, int whence) override { m_in->seek(offset, whence); }
  void rewind() override { m_in->rewind(); }
  size_t read(char* buffer, size_t length) override
  {
    const size_t n = m_in->read(buffer, length);
    setLastOffset(m_in->getLastOffset());
    m_count += n;
    return n;
  }
  void unreadCh(char ch) override { m_in->unreadCh(ch); }

private:
  std::shared_ptr<InputSource> m_in;
  std::size_t& m_count;
};

// Collects a decoded stream, refusing more than `limit` bytes.
class BoundedSink final : public Pipeline
{
public:
  BoundedSink(std::string& out, std::size_t limit)
      : Pipeline("pli-bounded", nullptr), m_out(out), m_limit(limit)
  {
  }
  void write(unsigned char const* data, size_t len) override
  {
    if (len > m_limit - m_out.size()) {
      m_over = true;
      throw std::length_error("stream over the limit");
    }
    m_out.append(reinterpret_cast<const char*>(data), len);
  }
  void finish() override {}
  bool over() const { return m_over; }

private:
  std::string& m_out;
  std::size_t m_limit;
  bool m_over = false;
};

class Decoder
{
public:
  explicit Decoder(const PdfLimits& limits) : m_limits(limits) {}

  // Appends the decoded data of `stream` to `out`; `what` names it in errors.
  util::Status decode(QPDFObjectHandle stream, std::string& out, const std::string& what)
  {
    if (!stream.isStream()) {
      return bad(fmt::format("{} is not a stream", what));
    }
    const std::size_t room =
        std::min(m_limits.max_decoded_bytes - std::min(out.size(), m_limits.max_decoded_bytes),
                 m_limits.max_total_decoded - m_total);
    std::string data;
    BoundedSink sink(data, room);
    bool attempted = false;
    bool ok = false;
    try {
      ok = stream.pipeStreamData(&sink, &attempted, 0, qpdf_dl_specialized, true, false);
    } catch (const std::length_error&) {
      ok = false;
    }
    if (sink.over()) {
      return bad(fmt::format("{} decodes to more than {} bytes", what,
                             std::min(m_limits.max_decoded_bytes, m_limits.max_total_decoded)));
    }
    const bool filtered = !stream.getDict().getKey("/Filter").isNull();
    if (!ok || (filtered && !attempted)) {
      return bad(fmt::format("{} does not decode", what));
    }
    m_total += data.size();
    out += data;
    return util::ok_status();
  }

private:
  const PdfLimits& m_limits;
  std::size_t m_total = 0;
};

class Reader
{
public:
  Reader(QPDF& q, const PdfLimits& limits, PdfContents& out)
      : m_q(q), m_limits(limits), m_decoder(limits), m_out(out)
  {
  }

  util::Status run()
  {
    QPDFEmbeddedFileDocumentHelper efdh(m_q);
    for (const auto& [key, fs] : efdh.getEmbeddedFiles()) {
      if (auto st = take(fs->getObjectHandle()); !st) {
        return st;
      }
    }
    auto pages = QPDFPageDocumentHelper(m_q).getAllPages();
    if (pages.size() > m_limits.max_pages) {
      return bad(
          fmt::format("the document has {} pages, more than {}", pages.size(), m_limits.max_pages));
    }
    std::size_t n = 0;
    for (auto& page : pages) {
      ++n;
      for (auto& annot : page.getAnnotations("/FileAttachment")) {
        auto fs = annot.getObjectHandle().getKey("/FS");
        if (fs.isDictionary()) {
          if (auto st = take(fs); !st) {
            return st;
          }
        }
      }
      std::string content;
      auto contents = page.getObjectHandle().getKey("/Contents");
      std::vector<QPDFObjectHandle> streams;
      if (contents.isArray()) {
        streams = contents.getArrayAsVector();
      } else if (!contents.isNull()) {
        streams.push_back(contents);
      }
      for (auto& s : streams) {
        if (auto st = m_decoder.decode(s, content, fmt::format("the content of page {}", n)); !st) {
          return st;
        }
      }
      m_out.page_content_sha256.push_back(util::sha256_hex(content));
    }
    return util::ok_status();
  }

private:
  // Takes the embedded file of file specification `fs` (once per object).
  util::Status take(QPDFObjectHandle fs)
  {
    if (!fs.isDictionary() || !fs.getKey("/Type").isNameAndEquals("/Filespec") ||
        !fs.getKey("/EF").isDictionary()) {
      return util::ok_status(); // not an embedded file (a reference to an outside file)
    }
    if (fs.isIndirect() && !m_seen.insert(fs.getObjGen()).second) {
      return util::ok_status();
    }
    QPDFFileSpecObjectHelper helper(fs);
    const std::string name = helper.getFilename();
    if (name.empty()) {
      return bad("an embedded file has no name");
    }
    if (m_out.files.size() >= m_limits.max_embedded_files) {
      return bad(
          fmt::format("the document embeds more than {} files", m_limits.max_embedded_files));
    }
    if (m_out.files.count(name) != 0) {
      return bad(fmt::format("the document embeds two files named {}", name));
    }
    std::string data;
    if (auto st = m_decoder.decode(helper.getEmbeddedFileStream(), data,
                                   fmt::format("the embedded file {}", name));
        !st) {
      return st;
    }
    m_out.files.emplace(name, std::move(data));
    return util::ok_status();
  }

  QPDF& m_q;
  const PdfLimits& m_limits;
  Decoder m_decoder;
  PdfContents& m_out;
  std::set<QPDFObjGen> m_seen;
};

} // namespace

util::Result<PdfContents> read_pdf(const std::string& pdf, const PdfLimits& limits)
{
  if (pdf.size() > limits.max_file_bytes) {
    return bad(fmt::format("the file is larger than {} bytes", limits.max_file_bytes));
  }
  PdfContents out;
  try {
    QPDF q;
    q.setSuppressWarnings(true);
    auto src = std::make_shared<CountingSource>(std::make_shared<BufferInputSource>("receipt", pdf),
                                                out.bytes_read);
    q.processInputSource(src);
    Reader reader(q, limits, out);
    if (auto st = reader.run(); !st) {
      return st.error();
    }
  } catch (const std::exception& e) {
    return bad(fmt::format("the file is not a readable PDF ({})", e.what()));
  }
  return out;
}

util::Result<std::map<std::string, std::string>> embedded_files(const std::string& pdf)
{
  auto r = read_pdf(pdf);
  if (!r) {
    return r.error();
  }
  return std::move(r->files);
}

} // namespace pli::receipt
