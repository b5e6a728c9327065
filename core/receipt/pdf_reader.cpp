#include "core/receipt/pdf_reader.hpp"

#include <fmt/format.h>

#include <cctype>
#include <optional>
#include <string_view>

namespace pli::receipt {

namespace {

util::Error bad(const std::string& what)
{
  return util::Error{1, what};
}

bool is_space(char c)
{
  return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0';
}

bool is_delim(char c)
{
  return is_space(c) || c == '/' || c == '<' || c == '>' || c == '[' || c == ']' || c == '(' ||
         c == ')' || c == '%';
}

// Parses a non-negative integer at `pos` (after optional whitespace); advances `pos`.
std::optional<long long> read_int(std::string_view s, std::size_t& pos)
{
  while (pos < s.size() && is_space(s[pos])) {
    ++pos;
  }
  std::size_t start = pos;
  long long v = 0;
  while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) != 0) {
    v = v * 10 + (s[pos] - '0');
    if (v > (1LL << 40)) {
      return std::nullopt;
    }
    ++pos;
  }
  if (pos == start) {
    return std::nullopt;
  }
  return v;
}

class Reader
{
public:
  explicit Reader(const std::string& pdf) : m_pdf(pdf) {}

  util::Status index()
  {
    if (!read_xref_chain()) {
      m_offsets.clear();
      scan_objects();
    }
    if (m_offsets.empty()) {
      return bad("the file is not a PDF this program can read (no objects found)");
    }
    return util::ok_status();
  }

  // The text of object `num` from after "obj" up to "endobj" (for streams, up to "stream").
  std::optional<std::string_view> object(long long num, std::size_t* body_start = nullptr)
  {
    auto it = m_offsets.find(num);
    if (it == m_offsets.end()) {
      return std::nullopt;
    }
    std::size_t pos = it->second;
    auto n = read_int(m_pdf, pos);
    auto g = read_int(m_pdf, pos);
    while (pos < m_pdf.size() && is_space(m_pdf[pos])) {
      ++pos;
    }
    if (!n || *n != num || !g || m_pdf.compare(pos, 3, "obj") != 0) {
      return std::nullopt;
    }
    pos += 3;
    std::size_t end = find_keyword(pos, "endobj");
    std::size_t st = find_keyword(pos, "stream");
    if (st != std::string::npos && (end == std::string::npos || st < end)) {
      end = st;
    }
    if (end == std::string::npos) {
      return std::nullopt;
    }
    if (body_start != nullptr) {
      *body_start = pos;
    }
    return std::string_view(m_pdf).substr(pos, end - pos);
  }

  util::Result<std::map<std::string, std::string>> files()
  {
    std::map<std::string, std::string> out;
    for (const auto& [num, off] : m_offsets) {
      auto body = object(num);
      if (!body || !has_name(*body, "/Filespec") || body->find("/EF") == std::string_view::npos) {
        continue;
      }
      std::string name;
      if (auto uf = string_after(*body, "/UF")) {
        name = *uf;
      } else if (auto f = string_after(*body, "/F")) {
        name = *f;
      } else {
        return bad(fmt::format("embedded file object {} has no name", num));
      }
      std::size_t ef = body->find("/EF");
      std::size_t fpos = body->find("/F", ef + 3);
      if (fpos == std::string_view::npos) {
        return bad(fmt::format("embedded file {} has no stream", name));
      }
      fpos += 2;
      auto ref = read_int(*body, fpos);
      if (!ref) {
        return bad(fmt::format("embedded file {} has no stream reference", name));
      }
      auto bytes = stream_of(*ref);
      if (!bytes) {
        return bytes.error();
      }
      if (!out.emplace(name, std::move(bytes.value())).second) {
        return bad(fmt::format("the PDF holds two embedded files named {}", name));
      }
    }
    return out;
  }

private:
  static bool has_name(std::string_view body, std::string_view name)
  {
    std::size_t p = 0;
    while ((p = body.find(name, p)) != std::string_view::npos) {
      std::size_t end = p + name.size();
      if (end >= body.size() || is_delim(body[end])) {
        return true;
      }
      p = end;
    }
    return false;
  }

  // The literal string (…) following key `key`, with escapes resolved.
  static std::optional<std::string> string_after(std::string_view body, std::string_view key)
  {
    std::size_t p = 0;
    while ((p = body.find(key, p)) != std::string_view::npos) {
      std::size_t q = p + key.size();
      if (q < body.size() && !is_delim(body[q])) {
        p = q;
        continue;
      }
      while (q < body.size() && is_space(body[q])) {
        ++q;
      }
      if (q >= body.size() || body[q] != '(') {
        p = q;
        continue;
      }
      std::string out;
      int depth = 1;
      for (++q; q < body.size(); ++q) {
        char c = body[q];
        if (c == '\\' && q + 1 < body.size()) {
          char e = body[++q];
          switch (e) {
          case 'n':
            out.push_back('\n');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          default:
            if (e >= '0' && e <= '7') {
              int v = e - '0';
              for (int k = 0;
                   k < 2 && q + 1 < body.size() && body[q + 1] >= '0' && body[q + 1] <= '7'; ++k) {
                v = v * 8 + (body[++q] - '0');
              }
              out.push_back(static_cast<char>(v));
            } else {
              out.push_back(e);
            }
          }
          continue;
        }
        if (c == '(') {
          ++depth;
        } else if (c == ')' && --depth == 0) {
          return out;
        }
        out.push_back(c);
      }
      return std::nullopt;
    }
    return std::nullopt;
  }

  util::Result<std::string> stream_of(long long num)
  {
    std::size_t start = 0;
    auto dict = object(num, &start);
    if (!dict) {
      return bad(fmt::format("object {} of an embedded file is missing", num));
    }
    if (!has_name(*dict, "/EmbeddedFile")) {
      return bad(fmt::format("object {} is not an embedded file stream", num));
    }
    if (dict->find("/Filter") != std::string_view::npos ||
        dict->find("/DecodeParms") != std::string_view::npos) {
      return bad("the embedded evidence is compressed or filtered; pli writes it uncompressed");
    }
    std::size_t lp = dict->find("/Length");
    if (lp == std::string_view::npos) {
      return bad("the embedded evidence has no /Length");
    }
    lp += 7;
    auto len = read_int(*dict, lp);
    std::size_t after = lp;
    auto gen = read_int(*dict, after);
    while (after < dict->size() && is_space((*dict)[after])) {
      ++after;
    }
    if (len && gen && after < dict->size() && (*dict)[after] == 'R') {
      auto ref = object(*len);
      std::size_t p = 0;
      len = ref ? read_int(*ref, p) : std::nullopt;
    }
    if (!len) {
      return bad("the embedded evidence has an unreadable /Length");
    }
    std::size_t pos = start + dict->size() + 6; // after "stream"
    if (pos < m_pdf.size() && m_pdf[pos] == '\r') {
      ++pos;
    }
    if (pos >= m_pdf.size() || m_pdf[pos] != '\n') {
      return bad("the embedded evidence stream is malformed");
    }
    ++pos;
    if (pos + static_cast<std::size_t>(*len) > m_pdf.size()) {
      return bad("the embedded evidence runs past the end of the file");
    }
    std::string data = m_pdf.substr(pos, static_cast<std::size_t>(*len));
    std::size_t e = pos + static_cast<std::size_t>(*len);
    while (e < m_pdf.size() && is_space(m_pdf[e])) {
      ++e;
    }
    if (m_pdf.compare(e, 9, "endstream") != 0) {
      return bad("the embedded evidence does not end where its /Length says");
    }
    return data;
  }

  // The position of `kw` as a keyword (delimited) at or after `from`.
  std::size_t find_keyword(std::size_t from, std::string_view kw) const
  {
    std::size_t p = from;
    while ((p = m_pdf.find(kw, p)) != std::string::npos) {
      bool before = p == 0 || is_delim(m_pdf[p - 1]);
      bool after = p + kw.size() >= m_pdf.size() || is_delim(m_pdf[p + kw.size()]);
      if (before && after) {
        return p;
      }
      p += kw.size();
    }
    return std::string::npos;
  }

  bool read_xref_chain()
  {
    std::size_t sx = m_pdf.rfind("startxref");
    if (sx == std::string::npos) {
      return false;
    }
    std::size_t pos = sx + 9;
    auto off = read_int(m_pdf, pos);
    for (int guard = 0; off && guard < 32; ++guard) {
      if (!read_xref_section(static_cast<std::size_t>(*off), off)) {
        return false;
      }
    }
    return !m_offsets.empty();
  }

  // Reads one "xref … trailer << … >>" section; `prev` gets the /Prev offset, if any.
  bool read_xref_section(std::size_t at, std::optional<long long>& prev)
  {
    prev.reset();
    if (at >= m_pdf.size() || m_pdf.compare(at, 4, "xref") != 0) {
      return false;
    }
    std::size_t pos = at + 4;
    for (;;) {
      std::size_t save = pos;
      auto first = read_int(m_pdf, pos);
      auto count = read_int(m_pdf, pos);
      if (!first || !count) {
        pos = save;
        break;
      }
      for (long long i = 0; i < *count; ++i) {
        auto offset = read_int(m_pdf, pos);
        auto gen = read_int(m_pdf, pos);
        while (pos < m_pdf.size() && is_space(m_pdf[pos])) {
          ++pos;
        }
        if (!offset || !gen || pos >= m_pdf.size()) {
          return false;
        }
        char kind = m_pdf[pos++];
        if (kind == 'n' && m_offsets.count(*first + i) == 0) {
          m_offsets[*first + i] = static_cast<std::size_t>(*offset);
        }
      }
    }
    while (pos < m_pdf.size() && is_space(m_pdf[pos])) {
      ++pos;
    }
    if (m_pdf.compare(pos, 7, "trailer") != 0) {
      return false;
    }
    std::size_t end = m_pdf.find(">>", pos);
    std::string_view trailer = std::string_view(m_pdf).substr(pos, end - pos);
    std::size_t pp = trailer.find("/Prev");
    if (pp != std::string_view::npos) {
      pp += 5;
      prev = read_int(trailer, pp);
    }
    return true;
  }

  void scan_objects()
  {
    std::size_t p = 0;
    while ((p = find_keyword(p, "obj")) != std::string::npos) {
      // Walk back over "N G ".
      std::size_t q = p;
      auto back_int = [&](std::size_t& i) -> bool {
        while (i > 0 && is_space(m_pdf[i - 1])) {
          --i;
        }
        std::size_t end = i;
        while (i > 0 && std::isdigit(static_cast<unsigned char>(m_pdf[i - 1])) != 0) {
          --i;
        }
        return i < end;
      };
      std::size_t g = q;
      if (back_int(g)) {
        std::size_t n = g;
        if (back_int(n)) {
          std::size_t pos = n;
          if (auto num = read_int(m_pdf, pos)) {
            m_offsets[*num] = n; // the last definition wins, as with incremental updates
          }
        }
      }
      p += 3;
    }
  }

  const std::string& m_pdf;
  std::map<long long, std::size_t> m_offsets;
};

} // namespace

util::Result<std::map<std::string, std::string>> embedded_files(const std::string& pdf)
{
  if (pdf.compare(0, 5, "%PDF-") != 0) {
    return bad("the file is not a PDF");
  }
  Reader r(pdf);
  if (auto st = r.index(); !st) {
    return st.error();
  }
  return r.files();
}

} // namespace pli::receipt
