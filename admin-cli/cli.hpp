// pli, the support CLI: the command table and what every command gets.
//
// Each command (commands/*.cpp) is one row of the table in app.cpp: its name, help, the
// store access it needs (none, read, write), how it declares its options to CLI11, and
// its run function. Output goes through one Printer (text or --json). Errors are one
// sentence on stderr and a distinct exit status (pli(1), EXIT STATUS; k_exit_* below,
// <sysexits.h> by name):
//   0 ok, 1 invalid receipt (verify) or nothing done, 2 unknown id, 64 bad arguments
//   (EX_USAGE), 73 cannot create (EX_CANTCREAT: a key that exists), 74 store error
//   (EX_IOERR), 78 config error (EX_CONFIG).
#pragma once

#include "core/cli/printer.hpp"
#include "core/config/config.hpp"
#include "core/store/store.hpp"

#include <CLI/CLI.hpp>
#include <sysexits.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace pli::admin {

// The CLI's exit statuses: pli's own 1 and 2, then <sysexits.h>'s by name.
constexpr int k_exit_invalid = 1;    // a receipt that does not verify, a store check that fails
constexpr int k_exit_unknown_id = 2; // no message or delivery of that id
constexpr int k_exit_usage = EX_USAGE;
constexpr int k_exit_cant_create = EX_CANTCREAT;
constexpr int k_exit_store = EX_IOERR;
constexpr int k_exit_config = config::k_exit_config;

// Thrown by commands; app.cpp prints "pli: MESSAGE" and exits with `status`.
struct Failure : std::runtime_error
{
  Failure(int s, const std::string& message) : std::runtime_error(message), status(s) {}
  int status;
};

enum class StoreAccess
{
  none,
  read,
  write
};

struct Context
{
  const config::Config& config;
  store::Store* store = nullptr; // open when the command's access is read or write
  cli::Printer& out;
  bool json = false;
};

struct Command
{
  std::string name; // "list", "consultation set" ...
  std::string help;
  StoreAccess access = StoreAccess::read;
  std::function<void(CLI::App&)> declare; // options, bound to the command's own arguments
  std::function<int(Context&)> run;
};

// The table (app.cpp) and its rows (commands/*.cpp).
Command show_command();
Command list_command();
Command receipt_command();
Command verify_command();
Command consultation_set_command();
Command revoke_command();
Command export_command();
Command purge_command();
Command keygen_command();
Command check_config_command();
Command doctor_command();
Command store_check_command();
Command store_migrate_schema_command();
Command store_copy_command();

int run(int argc, char** argv);

// Shared helpers (app.cpp).
// Resolves a message id, a delivery id or a Message-ID to a message id; `delivery`
// receives the delivery id when ID named one. Throws Failure(2) when unknown.
std::string resolve_message(store::Store& st, const std::string& id, std::string* delivery);
// The delivery ID names, or of message ID to `recipient`, or its only delivery.
// Throws Failure(2) when unknown, Failure(64) when a message has several and none is chosen.
store::pb::Delivery resolve_delivery(store::Store& st, const std::string& id,
                                     const std::string& recipient);
// A store result's value, or Failure(74) (Failure(2) for not_found).
template <typename T> T checked(util::Result<T> r)
{
  if (!r) {
    throw Failure(r.error().code == store::Errc::not_found ? k_exit_unknown_id : k_exit_store,
                  r.error().message);
  }
  return std::move(r.value());
}
// "dd/mm/yyyy - HH:MM:SS" in the organisation's zone, "" for 0.
std::string human(const config::Config& c, util::Micros t);
// Parses --since/--until values ("YYYY-MM-DD[ HH:MM[:SS]]"); Failure(64) when invalid.
util::Micros parse_date(const config::Config& c, const std::string& option,
                        const std::string& value);

} // namespace pli::admin
