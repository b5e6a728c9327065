// The template engine (core/templates/template.hpp: pli-linkd's pages and the mails)
// against mstch::render itself, the oracle, linked into the tests only: every page template
// of core/templates with contexts that turn each section on and off, every mail template
// with hostile values, and random templates built from the tag kinds, white space and
// newlines where mstch's standalone-line rule matters. Any difference in output is a failure.
#include "core/templates/template.hpp"
#include "core/templates/templates.hpp"

#include <catch2/catch.hpp>

#include <mstch/mstch.hpp>

#include <random>

using PageTemplate = pli::templates::Template;
namespace templates = pli::templates;

namespace {

// The same context for mstch.
mstch::node to_mstch(const templates::Value& v)
{
  struct Visitor
  {
    mstch::node operator()(std::nullptr_t) const { return nullptr; }
    mstch::node operator()(const std::string& s) const { return s; }
    mstch::node operator()(bool b) const { return b; }
    mstch::node operator()(int n) const { return n; }
    mstch::node operator()(double d) const { return d; }
    mstch::node operator()(const templates::Map& m) const
    {
      mstch::map out;
      for (const auto& [k, x] : m) {
        out.emplace(k, to_mstch(x));
      }
      return out;
    }
    mstch::node operator()(const templates::List& l) const
    {
      mstch::array out;
      for (const auto& x : l) {
        out.push_back(to_mstch(x));
      }
      return out;
    }
  };
  return std::visit(Visitor{}, v.variant());
}

std::string with_mstch(const std::string& t, const templates::Map& ctx,
                       const templates::Map& globals)
{
  mstch::map full = boost::get<mstch::map>(to_mstch(ctx));
  for (const auto& [k, v] : globals) {
    full.emplace(k, to_mstch(v));
  }
  return mstch::render(t, full);
}

// The names used by the pages, with values that need escaping, and the sections' lists.
templates::Map rich_context(bool on)
{
  templates::Map ctx;
  for (const char* name : {"page_title",
                           "text",
                           "sender",
                           "recipient",
                           "type_label",
                           "subject",
                           "sent_at",
                           "token",
                           "read_at",
                           "text_body",
                           "replies",
                           "max_mb",
                           "max_attachments",
                           "from",
                           "replied_at",
                           "attachment_count",
                           "link",
                           "address",
                           "csrf",
                           "error",
                           "query",
                           "total",
                           "message"}) {
    ctx[name] = on ? std::string("<b>\"it's\" & a/b</b> ") + name : std::string();
  }
  for (const char* flag : {"retry", "has_html", "has_attachments", "reply_allowed", "admin", "sent",
                           "gap", "selected", "checked", "first", "last"}) {
    ctx[flag] = on;
  }
  templates::List atts;
  if (on) {
    for (int i = 0; i < 3; ++i) {
      atts.push_back(templates::Map{{"index", std::to_string(i)},
                                    {"name", std::string("f<") + std::to_string(i) + ">.pdf"},
                                    {"size", std::string("12 Ko")},
                                    {"sha256", std::string("ab/cd")},
                                    {"n", i},
                                    {"selected", i == 1}});
    }
  }
  ctx["attachments"] = atts;
  ctx["rows"] = atts;
  ctx["links"] = atts;
  ctx["events"] = atts;
  if (on) {
    ctx["consultation"] = templates::Map{{"reference", std::string("2022AK_014")},
                                         {"title", std::string("Travaux & <voirie>")},
                                         {"deadline", std::string("1 juillet 2022")}};
    ctx["viewer"] = templates::Map{
        {"address", std::string("a@b.example")}, {"csrf", std::string("x/y")}, {"admin", true}};
  }
  return ctx;
}

// A random template: text with spaces, tabs and newlines between tags of every kind,
// sections well nested.
std::string random_template(std::mt19937& rng)
{
  static const char* names[] = {"a", "b", "list", "empty", "zero", "no", "s", "m"};
  static const char* texts[] = {"x", " ", "  ", "\t", "\n", " \n", "\n\n", "y z", "<&>", "'\"/"};
  std::string t;
  std::vector<std::string> open;
  const int n = std::uniform_int_distribution<int>(1, 30)(rng);
  for (int i = 0; i < n; ++i) {
    const std::string name = names[rng() % std::size(names)];
    switch (rng() % 9) {
    case 0:
    case 1:
    case 2:
      t += texts[rng() % std::size(texts)];
      break;
    case 3:
      t += "{{" + std::string(rng() % 2 ? " " : "") + name + "}}";
      break;
    case 4:
      t += rng() % 2 ? "{{{" + name + "}}}" : "{{& " + name + "}}";
      break;
    case 5:
      t += std::string(rng() % 2 ? "{{#" : "{{^") + name + "}}";
      open.push_back(name);
      break;
    case 6:
      if (!open.empty()) {
        t += "{{/" + open.back() + "}}";
        open.pop_back();
      }
      break;
    case 7:
      t += "{{! a comment }}";
      break;
    default:
      t += "{{> nothing}}";
      break;
    }
  }
  while (!open.empty()) {
    t += std::string(rng() % 2 ? "\n" : "") + "{{/" + open.back() + "}}";
    open.pop_back();
  }
  return t;
}

} // namespace

TEST_CASE("PageTemplate renders every page exactly as mstch", "[linkd][template]")
{
  const templates::Map globals{{"organisation", std::string("Région <Exemple> & co")}};
  int pages = 0;
  for (const char* page :
       {"page", "landing", "content", "reply", "reply_sent", "reply_landing", "reply_content",
        "suivi_login", "suivi_link", "suivi_list", "suivi_detail", "suivi_page"}) {
    for (const char* lang : {"fr", "en"}) {
      std::string t(pli::templates::get(std::string(page) + "." + lang + ".html"));
      REQUIRE(!t.empty());
      for (const char* p : {"top", "bottom", "facts", "suivi_top", "suivi_bottom"}) {
        const std::string tag = std::string("{{> ") + p + "}}";
        const std::string text(pli::templates::get(std::string("_") + p + "." + lang + ".html"));
        for (auto at = t.find(tag); at != std::string::npos; at = t.find(tag, at + text.size())) {
          t.replace(at, tag.size(), text);
        }
      }
      const PageTemplate compiled(t);
      for (bool on : {true, false}) {
        const templates::Map ctx = rich_context(on);
        INFO(page << "." << lang << " sections " << (on ? "on" : "off"));
        CHECK(compiled.render(ctx, &globals) == with_mstch(t, ctx, globals));
      }
      ++pages;
    }
  }
  CHECK(pages == 24);
}

TEST_CASE("PageTemplate matches mstch on random templates", "[linkd][template]")
{
  const templates::Map ctx{
      {"a", std::string("A&<'\"/>")},
      {"b", true},
      {"s", std::string("str")},
      {"empty", std::string()},
      {"zero", 0},
      {"no", false},
      {"m", templates::Map{{"a", std::string("inner a")}, {"b", 1.5}}},
      {"list", templates::List{templates::Map{{"a", std::string("one")}}, templates::Map{{"s", 2}},
                               std::string("plain")}},
  };
  const templates::Map globals{{"s", std::string("global s")}, {"g", std::string("g")}};
  std::mt19937 rng(20261129);
  for (int i = 0; i < 3000; ++i) {
    const std::string t = random_template(rng);
    INFO("template: " << t);
    REQUIRE(PageTemplate(t).render(ctx, &globals) == with_mstch(t, ctx, globals));
  }
}

TEST_CASE("PageTemplate refuses what it does not render like mstch", "[linkd][template]")
{
  CHECK_THROWS(PageTemplate("{{=<% %>=}}"));
  CHECK_THROWS(PageTemplate("{{#a}}x"));
  CHECK_THROWS(PageTemplate("{{#a}}x{{/b}}"));
  std::string out;
  pli::templates::append_html_escaped(out, "a&b<c>d\"e'f/g");
  CHECK(out == "a&amp;b&lt;c&gt;d&quot;e&#39;f&#x2F;g");
}

TEST_CASE("every mail template renders exactly as mstch, hostile values included",
          "[mail][template]")
{
  const std::string hostile = "<b>\"l'offre\" & a/b</b> {{x}} é\n";
  const auto context = [&](bool on) {
    templates::Map ctx;
    for (const char* name : {"organisation", "sender", "type_label", "subject", "link", "expires",
                             "from", "sent_at", "minutes", "ip"}) {
      ctx[name] = on ? hostile + name : std::string();
    }
    ctx["reply_allowed"] = on;
    if (on) {
      ctx["consultation"] = templates::Map{{"reference", hostile + "ref"},
                                           {"title", hostile + "title"},
                                           {"object", hostile + "object"},
                                           {"deadline", hostile + "deadline"}};
    }
    return ctx;
  };
  int mails = 0;
  for (const char* file :
       {"notice.fr.txt", "notice.en.txt", "notice.fr.html", "notice.en.html", "reply_notice.fr.txt",
        "reply_notice.en.txt", "suivi_login_mail.fr.txt", "suivi_login_mail.en.txt"}) {
    const std::string t(templates::get(file));
    REQUIRE(!t.empty());
    for (bool on : {true, false}) {
      INFO(file << " sections " << (on ? "on" : "off"));
      const templates::Map ctx = context(on);
      CHECK(templates::render_file(file, ctx) == with_mstch(t, ctx, {}));
    }
    ++mails;
  }
  CHECK(mails == 8);
  // The text mails write their values raw ({{{x}}}), as mstch does.
  const std::string text = templates::render_file("reply_notice.en.txt", context(true));
  CHECK(text.find(hostile + "from") != std::string::npos);
  const std::string notice = templates::render_file("notice.en.txt", context(true));
  CHECK(notice.find(hostile + "sender") != std::string::npos);
  // The organisation's name too: "Ville d'Arles", not "Ville d&#39;Arles".
  CHECK(notice.find(hostile + "organisation has sent you") == 0);
  // In the HTML notice every value is escaped.
  const std::string html = templates::render_file("notice.en.html", context(true));
  CHECK(html.find("<b>\"l'offre\"") == std::string::npos);
  CHECK_THROWS_AS(templates::render_file("no-such.txt", {}), std::runtime_error);
}

TEST_CASE("template values: what is empty, and what renders", "[template]")
{
  CHECK(templates::Value().empty());
  CHECK(templates::Value(std::string()).empty());
  CHECK(templates::Value(false).empty());
  CHECK(templates::Value(0).empty());
  CHECK(templates::Value(0.0).empty());
  CHECK(templates::Value(templates::List{}).empty());
  CHECK_FALSE(templates::Value(templates::Map{}).empty());
  CHECK_FALSE(templates::Value(std::string("x")).empty());
  CHECK_FALSE(templates::Value(templates::List{templates::Value(true)}).empty());
  const templates::Map ctx{
      {"n", 3}, {"b", true}, {"list", templates::List{std::string("a<"), std::string("b")}}};
  CHECK(PageTemplate("{{n}} {{b}} {{#list}}[{{.}}]{{/list}}").render(ctx) == "3 true [a&lt;][b]");
}
