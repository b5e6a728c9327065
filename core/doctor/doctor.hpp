// pli doctor: checks that Postfix and pli are set up as registered mail needs, and says
// for each problem the exact line that fixes it.
//
// Postfix is read through its own tools (`postconf [-c DIR]`, `postconf -M/-P`, `postmap
// -q`), never by parsing main.cf ourselves. Live checks: the milter socket and pli-linkd
// answer, the store is writable, the receipt signing keys are present.
#pragma once

#include "core/config/config.hpp"

#include <string>
#include <vector>

namespace pli::doctor {

struct Check
{
  bool ok = false;
  std::string what;  // one sentence: what was checked, or what is wrong
  std::string fix;   // when not ok: the exact line(s) to add, or the command to run
  std::string where; // "main.cf", "master.cf", "pli.yaml", "system"
};

struct Options
{
  std::string postfix_config_dir; // empty: Postfix's default (/etc/postfix)
  bool live = true;               // also try the milter socket, linkd, the store, the keys
};

// Runs every check. Never throws on a broken system: every failure is a Check.
std::vector<Check> run(const config::Config& config, const Options& options);

// The Postfix milter spec for pli's milter.socket, as main.cf/master.cf should name it:
// unix:/var/spool/postfix/pli/milter.sock -> unix:pli/milter.sock when under
// queue_directory; inet:PORT@HOST -> inet:HOST:PORT.
std::string postfix_milter_spec(const std::string& pli_socket, const std::string& queue_directory);

} // namespace pli::doctor
