#include "core/templates/template.hpp"

#include "core/templates/templates.hpp"

#include "core/util/text.hpp"

#include <sstream>
#include <stdexcept>

namespace pli::templates {

namespace {

enum class Tok : unsigned char
{
  text,
  variable,
  raw,
  open,
  inverted,
  close,
  comment,
  partial,
};

struct Token
{
  Tok type;
  std::string_view text; // the raw text, or a tag's name
  bool eol = false;      // text ending a line
  bool ws_only = false;  // text made of spaces, tabs and newlines only
  bool keep = true;
};

std::string_view trim_spaces(std::string_view s)
{
  return util::trim(s, " ");
}

Token text_token(std::string_view s)
{
  Token t{Tok::text, s};
  t.eol = !s.empty() && s.back() == '\n';
  t.ws_only = s.find_first_not_of(" \n\t") == std::string_view::npos;
  return t;
}

// The text between two tags, one token per line (each ending with its '\n', if any).
void split_text(std::vector<Token>& out, std::string_view s)
{
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || i + 1 == s.size()) {
      out.push_back(text_token(s.substr(start, i + 1 - start)));
      start = i + 1;
    }
  }
}

// A tag, `raw` from its "{{" to its "}}" (or "}}}").
Token tag_token(std::string_view raw)
{
  std::string_view inner = raw.substr(2, raw.size() - 4);
  if (raw.size() >= 6 && raw[2] == '{' && raw[raw.size() - 3] == '}') {
    return Token{Tok::raw, trim_spaces(raw.substr(3, raw.size() - 6))};
  }
  inner = trim_spaces(inner);
  Tok type = Tok::variable;
  if (!inner.empty()) {
    switch (inner.front()) {
    case '>':
      type = Tok::partial;
      break;
    case '^':
      type = Tok::inverted;
      break;
    case '/':
      type = Tok::close;
      break;
    case '&':
      type = Tok::raw;
      break;
    case '#':
      type = Tok::open;
      break;
    case '!':
      type = Tok::comment;
      break;
    default:
      break;
    }
  }
  if (type != Tok::variable) {
    inner = trim_spaces(inner.substr(1));
  }
  return Token{type, inner};
}

std::vector<Token> tokenize(std::string_view t)
{
  std::vector<Token> tokens;
  std::size_t cur = 0;
  while (cur < t.size()) {
    const auto open = t.find("{{", cur);
    auto close = open == std::string_view::npos ? open : t.find("}}", open + 1);
    if (open == std::string_view::npos || close == std::string_view::npos) {
      split_text(tokens, t.substr(cur));
      break;
    }
    if (open + 2 < t.size() && t[open + 2] == '{' && close + 2 < t.size() && t[close + 2] == '}') {
      ++close;
    }
    split_text(tokens, t.substr(cur, open - cur));
    cur = close + 2;
    const std::string_view raw = t.substr(open, cur - open);
    if (raw.size() > 4 && raw[2] == '=' && raw[raw.size() - 3] == '=') {
      throw std::runtime_error("template: delimiter changes are not supported");
    }
    tokens.push_back(tag_token(raw));
    if (cur == t.size()) {
      Token end = text_token("");
      end.eol = true; // a tag ending the template ends its last line
      tokens.push_back(end);
    }
  }
  return tokens;
}

// Mustache's standalone lines: on a line holding only section, comment or partial tags and
// white space, the white space (its newline included) is dropped.
void strip_standalone(std::vector<Token>& tokens)
{
  std::size_t line_begin = 0;
  bool has_tag = false, non_space = false;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const Tok type = tokens[i].type;
    if (type != Tok::text && type != Tok::variable && type != Tok::raw) {
      has_tag = true;
    } else if (!tokens[i].ws_only) {
      non_space = true;
    }
    if (tokens[i].eol) {
      if (has_tag && !non_space) {
        for (std::size_t j = line_begin; j <= i; ++j) {
          tokens[j].keep = !tokens[j].ws_only;
        }
      }
      has_tag = non_space = false;
      line_begin = i + 1;
    }
  }
}

const Value k_null{nullptr};

} // namespace

bool Value::empty() const
{
  struct Visitor
  {
    bool operator()(std::nullptr_t) const { return true; }
    bool operator()(const std::string& s) const { return s.empty(); }
    bool operator()(bool b) const { return !b; }
    bool operator()(int n) const { return n == 0; }
    bool operator()(double d) const { return d == 0; }
    bool operator()(const Map&) const { return false; }
    bool operator()(const List& l) const { return l.empty(); }
  };
  return std::visit(Visitor{}, m_v);
}

void append_html_escaped(std::string& out, std::string_view text)
{
  std::size_t plain = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char* rep = nullptr;
    switch (text[i]) {
    case '&':
      rep = "&amp;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '/':
      rep = "&#x2F;";
      break;
    default:
      continue;
    }
    out.append(text.data() + plain, i - plain);
    out += rep;
    plain = i + 1;
  }
  out.append(text.data() + plain, text.size() - plain);
}

Template::Template(std::string_view text)
{
  std::vector<Token> tokens = tokenize(text);
  strip_standalone(tokens);
  std::vector<std::size_t> open; // indexes in m_nodes of the sections not closed yet
  bool merge = false;            // the last node is text of the current body
  for (const Token& t : tokens) {
    if (!t.keep) {
      continue;
    }
    switch (t.type) {
    case Tok::text:
      if (t.text.empty()) {
        break;
      }
      if (merge) {
        m_nodes.back().text += t.text;
      } else {
        m_nodes.push_back(Node{Kind::text, std::string(t.text)});
      }
      m_size_hint += t.text.size();
      merge = true;
      break;
    case Tok::variable:
    case Tok::raw:
      m_nodes.push_back(Node{t.type == Tok::raw ? Kind::raw : Kind::escaped, std::string(t.text)});
      merge = false;
      break;
    case Tok::open:
    case Tok::inverted:
      open.push_back(m_nodes.size());
      m_nodes.push_back(
          Node{t.type == Tok::open ? Kind::section : Kind::inverted, std::string(t.text)});
      merge = false;
      break;
    case Tok::close:
      if (open.empty()) {
        break; // mstch ignores a close tag outside any section
      }
      if (m_nodes[open.back()].text != t.text) {
        throw std::runtime_error("template: {{/" + std::string(t.text) + "}} closes {{#" +
                                 m_nodes[open.back()].text + "}}");
      }
      m_nodes[open.back()].end = m_nodes.size();
      open.pop_back();
      merge = false;
      break;
    case Tok::comment:
    case Tok::partial:
      break;
    }
  }
  if (!open.empty()) {
    throw std::runtime_error("template: {{#" + m_nodes[open.back()].text + "}} is not closed");
  }
}

struct Template::Scope
{
  const Map& root;
  const Map* globals;
  std::vector<const Value*> stack; // innermost last

  const Value& find(const std::string& name) const
  {
    for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
      const Value& n = **it;
      if (const Map* m = n.map()) {
        if (auto f = m->find(name); f != m->end()) {
          return f->second;
        }
      } else if (name == ".") {
        return n;
      }
    }
    if (auto f = root.find(name); f != root.end()) {
      return f->second;
    }
    if (globals != nullptr) {
      if (auto f = globals->find(name); f != globals->end()) {
        return f->second;
      }
    }
    return k_null;
  }
};

void Template::render_range(std::string& out, std::size_t begin, std::size_t end,
                            Scope& scope) const
{
  for (std::size_t i = begin; i < end;) {
    const Node& node = m_nodes[i];
    switch (node.kind) {
    case Kind::text:
      out += node.text;
      ++i;
      break;
    case Kind::escaped:
    case Kind::raw: {
      const Value::Variant& v = scope.find(node.text).variant();
      if (const auto* s = std::get_if<std::string>(&v)) {
        if (node.kind == Kind::escaped) {
          append_html_escaped(out, *s);
        } else {
          out += *s;
        }
      } else if (const auto* n = std::get_if<int>(&v)) {
        out += std::to_string(*n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        std::ostringstream ss;
        ss << *d;
        out += ss.str();
      } else if (const auto* b = std::get_if<bool>(&v)) {
        out += *b ? "true" : "false";
      }
      ++i;
      break;
    }
    case Kind::section: {
      const Value& v = scope.find(node.text);
      if (!v.empty()) {
        if (const List* a = v.list()) {
          for (const auto& item : *a) {
            scope.stack.push_back(&item);
            render_range(out, i + 1, node.end, scope);
            scope.stack.pop_back();
          }
        } else {
          scope.stack.push_back(&v);
          render_range(out, i + 1, node.end, scope);
          scope.stack.pop_back();
        }
      }
      i = node.end;
      break;
    }
    case Kind::inverted:
      if (scope.find(node.text).empty()) {
        scope.stack.push_back(&k_null);
        render_range(out, i + 1, node.end, scope);
        scope.stack.pop_back();
      }
      i = node.end;
      break;
    }
  }
}

void Template::render_to(std::string& out, const Map& ctx, const Map* globals) const
{
  Scope scope{ctx, globals, {}};
  scope.stack.reserve(8);
  out.reserve(out.size() + m_size_hint + m_size_hint / 4 + 256);
  render_range(out, 0, m_nodes.size(), scope);
}

std::string Template::render(const Map& ctx, const Map* globals) const
{
  std::string out;
  render_to(out, ctx, globals);
  return out;
}

std::string render_file(std::string_view name, const Map& ctx)
{
  const std::string_view text = get(name);
  if (text.empty()) {
    throw std::runtime_error("missing template " + std::string(name));
  }
  return Template(text).render(ctx);
}

} // namespace pli::templates
