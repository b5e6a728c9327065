// What the milter's unit tests share: a recording MTA session, a store in a temporary
// directory, a config with buyers and internal domains, and a message fed to the engine as
// libmilter would (header by header, then the body).
#pragma once

#include "core/config/config.hpp"
#include "core/milter/engine.hpp"

#include "tests/unit/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace pli::test {

struct Recording : milter::MtaSession
{
  std::map<std::string, std::string> macros;
  std::vector<std::string> deleted;
  std::vector<std::pair<std::string, std::string>> changed;
  std::string macro(const char* name) override
  {
    auto it = macros.find(name);
    return it == macros.end() ? "" : it->second;
  }
  bool delete_recipient(const std::string& r) override
  {
    deleted.push_back(r);
    return true;
  }
  bool change_header(const std::string& n, int, const std::string& v) override
  {
    changed.emplace_back(n, v);
    return true;
  }
};

struct TempStore
{
  explicit TempStore(std::uint64_t map_size_mb = 64)
      : store(std::move(store::open_lmdb({dir.path.string(), map_size_mb, false}).value()))
  {
  }
  test::TempDir dir;
  std::unique_ptr<store::Store> store;
};

// `policy` lines go into the policy section; `extra`, whole sections, at the end.
inline config::Config make_config(const std::string& extra = "", const std::string& policy = "")
{
  auto c = config::load_from_string(R"(organisation: { name: "Région Exemple" }
store: { path: /tmp/unused }
milter: { socket: "unix:/tmp/unused.sock" }
policy:
  buyers: ["*@marches.example.org", "achat-*@example.org"]
  internal_domains: ["example.org"]
  trusted_networks: ["192.0.2.0/24", "2001:db8::/32"]
)" + policy + R"(bounce: { address: "pli-bounce@example.org" }
linkd: { public_url: "https://pli.example.org" }
)" + extra,
                                    "test.yaml");
  REQUIRE(c.ok());
  return c.value();
}

inline void feed(milter::Engine& e, milter::Transaction& t, const std::string& raw)
{
  auto sep = raw.find("\n\n");
  std::istringstream headers(raw.substr(0, sep));
  std::string line, name, value;
  auto flush = [&] {
    if (!name.empty()) {
      e.header(t, name, value);
    }
  };
  while (std::getline(headers, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      value += "\n" + line;
      continue;
    }
    flush();
    auto colon = line.find(':');
    name = line.substr(0, colon);
    value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') {
      value.erase(0, 1);
    }
  }
  flush();
  e.body(t, sep == std::string::npos ? "" : raw.substr(sep + 2));
}

} // namespace pli::test
