// PageTemplate (pli-linkd's parsed pages) against mstch::render itself: every page template
// of core/templates with contexts that turn each section on and off, and random templates
// built from the tag kinds, white space and newlines where mstch's standalone-line rule
// matters. Any difference in output is a failure.
#include "core/linkd/page_template.hpp"
#include "core/templates/templates.hpp"

#include <catch2/catch.hpp>

#include <mstch/mstch.hpp>

#include <random>

using pli::linkd::PageTemplate;

namespace {

std::string with_mstch(const std::string& t, const mstch::map& ctx, const mstch::map& globals)
{
  mstch::map full = ctx;
  for (const auto& [k, v] : globals) {
    full.emplace(k, v);
  }
  return mstch::render(t, full);
}

// The names used by the pages, with values that need escaping, and the sections' lists.
mstch::map rich_context(bool on)
{
  mstch::map ctx;
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
  mstch::array atts;
  if (on) {
    for (int i = 0; i < 3; ++i) {
      atts.push_back(mstch::map{{"index", std::to_string(i)},
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
    ctx["consultation"] = mstch::map{{"reference", std::string("2022AK_014")},
                                     {"title", std::string("Travaux & <voirie>")},
                                     {"deadline", std::string("1 juillet 2022")}};
    ctx["viewer"] = mstch::map{
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
  const mstch::map globals{{"organisation", std::string("Région <Exemple> & co")}};
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
        const mstch::map ctx = rich_context(on);
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
  const mstch::map ctx{
      {"a", std::string("A&<'\"/>")},
      {"b", true},
      {"s", std::string("str")},
      {"empty", std::string()},
      {"zero", 0},
      {"no", false},
      {"m", mstch::map{{"a", std::string("inner a")}, {"b", 1.5}}},
      {"list", mstch::array{mstch::map{{"a", std::string("one")}}, mstch::map{{"s", 2}},
                            std::string("plain")}},
  };
  const mstch::map globals{{"s", std::string("global s")}, {"g", std::string("g")}};
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
  pli::linkd::append_html_escaped(out, "a&b<c>d\"e'f/g");
  CHECK(out == "a&amp;b&lt;c&gt;d&quot;e&#39;f&#x2F;g");
}
