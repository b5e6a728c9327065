#include "core/cli/printer.hpp"

#include "core/cli/views.hpp"
#include "core/util/text.hpp"

#include <algorithm>
#include <ostream>

namespace pli::cli {

std::string terminal_safe(std::string_view s, bool keep_newlines)
{
  std::string out;
  out.reserve(s.size());
  const std::size_t n = s.size();
  auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = at(i);
    if (c == 0x1b) {
      ++i;
      if (i < n && s[i] == '[') { // CSI: parameters up to a final byte 0x40-0x7E
        ++i;
        while (i < n && !(at(i) >= 0x40 && at(i) <= 0x7e)) {
          ++i;
        }
        i += i < n ? 1 : 0;
      } else if (i < n && (s[i] == ']' || s[i] == 'P' || s[i] == '_' || s[i] == '^' ||
                           s[i] == 'X')) { // OSC, DCS, APC, PM, SOS: up to BEL or ST
        ++i;
        while (i < n && at(i) != 0x07 && !(at(i) == 0x1b && i + 1 < n && s[i + 1] == '\\')) {
          ++i;
        }
        i += i < n ? (at(i) == 0x07 ? 1 : 2) : 0;
      } else if (i < n) {
        ++i; // a two-character escape
      }
      continue;
    }
    if (c == '\n' && keep_newlines) {
      out.push_back('\n');
      ++i;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      out.push_back(' ');
      ++i;
      continue;
    }
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
    }
    bool ok = len != 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (at(i + k) & 0xc0) == 0x80;
    }
    if (ok && len == 3) { // no overlong forms, no surrogates
      ok = !(c == 0xe0 && at(i + 1) < 0xa0) && !(c == 0xed && at(i + 1) >= 0xa0);
    } else if (ok && len == 4) {
      ok = !(c == 0xf0 && at(i + 1) < 0x90) && !(c == 0xf4 && at(i + 1) >= 0x90);
    }
    if (!ok || (c == 0xc2 && at(i + 1) < 0xa0)) { // not UTF-8, or a C1 control
      out.push_back('?');
      i += ok ? len : 1;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string cut(const std::string& s, std::size_t max)
{
  std::string clean;
  clean.reserve(s.size());
  for (char c : s) {
    clean.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  }
  if (util::display_width(clean) <= max) {
    return clean;
  }
  return std::string(util::prefix_of_width(clean, max == 0 ? 0 : max - 1)) + "…";
}

namespace {

class TextPrinter final : public Printer
{
public:
  explicit TextPrinter(std::ostream& out) : m_out(out) {}

  void heading(const std::string& text) override
  {
    m_out << "\n" << terminal_safe(text, true) << "\n";
  }

  void field(const std::string& label, const std::string& value, std::size_t width) override
  {
    const std::string l = terminal_safe(label);
    std::size_t w = util::display_width(l);
    m_out << l << std::string(w < width ? width - w : 1, ' ') << terminal_safe(value) << "\n";
  }

  void table(const std::vector<std::string>& raw_head,
             const std::vector<std::vector<std::string>>& raw_rows) override
  {
    auto safe = [](const std::vector<std::string>& cells) {
      std::vector<std::string> out;
      out.reserve(cells.size());
      for (const auto& c : cells) {
        out.push_back(terminal_safe(c));
      }
      return out;
    };
    const std::vector<std::string> head = safe(raw_head);
    std::vector<std::vector<std::string>> rows;
    rows.reserve(raw_rows.size());
    for (const auto& r : raw_rows) {
      rows.push_back(safe(r));
    }
    std::vector<std::size_t> w(head.size());
    for (std::size_t i = 0; i < head.size(); ++i) {
      w[i] = util::display_width(head[i]);
      for (const auto& r : rows) {
        w[i] = std::max(w[i], util::display_width(r.at(i)));
      }
    }
    auto print = [&](const std::vector<std::string>& cells) {
      std::string out;
      for (std::size_t i = 0; i < cells.size(); ++i) {
        out += cells[i];
        if (i + 1 < cells.size()) {
          out += std::string(w[i] - util::display_width(cells[i]) + 2, ' ');
        }
      }
      while (!out.empty() && out.back() == ' ') {
        out.pop_back();
      }
      m_out << out << "\n";
    };
    print(head);
    for (const auto& r : rows) {
      print(r);
    }
  }

  void line(const std::string& text) override { m_out << terminal_safe(text, true) << "\n"; }

  void document(nlohmann::json) override {}

private:
  std::ostream& m_out;
};

class JsonPrinter final : public Printer
{
public:
  explicit JsonPrinter(std::ostream& out) : m_out(out) {}
  void heading(const std::string&) override {}
  void field(const std::string&, const std::string&, std::size_t) override {}
  void table(const std::vector<std::string>&, const std::vector<std::vector<std::string>>&) override
  {
  }
  void line(const std::string&) override {}
  void document(nlohmann::json doc) override
  {
    if (doc.is_object() && !doc.contains("format_version")) {
      doc["format_version"] = k_format_version;
    }
    m_out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }

private:
  std::ostream& m_out;
};

} // namespace

std::unique_ptr<Printer> make_printer(Format format, std::ostream& out)
{
  if (format == Format::json) {
    return std::make_unique<JsonPrinter>(out);
  }
  return std::make_unique<TextPrinter>(out);
}

} // namespace pli::cli
