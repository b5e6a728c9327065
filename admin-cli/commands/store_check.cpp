// pli store check [--repair] [--json]: every record of the store read back; the ones that
// cannot be (text that is not UTF-8 written by an older pli, corrupt bytes) listed, and with
// --repair the repairable ones rewritten (store.hpp, Store::check). Exit 0 when nothing is
// left unreadable, 1 when something is.
#include "admin-cli/cli.hpp"

#include <fmt/format.h>

namespace pli::admin {

namespace {

struct Args
{
  bool repair = false;
} args;

int run_store_check(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  auto r =
      checked(ctx.store->check(args.repair ? store::CheckMode::repair : store::CheckMode::report));
  nlohmann::json damaged = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows;
  std::size_t left = 0;
  for (const auto& d : r.damaged) {
    damaged.push_back({{"database", d.database},
                       {"key", d.key},
                       {"reason", d.reason},
                       {"repairable", d.repairable},
                       {"repaired", d.repaired}});
    rows.push_back({d.database, d.key, d.reason,
                    d.repaired     ? (fr ? "réparé" : "repaired")
                    : d.repairable ? (fr ? "réparable (--repair)" : "repairable (--repair)")
                                   : (fr ? "non réparable" : "cannot be repaired")});
    left += d.repaired ? 0 : 1;
  }
  nlohmann::json chains = nlohmann::json::object();
  std::size_t broken = 0;
  for (const auto& [mid, ok] : r.chains) {
    chains[mid] = ok;
    broken += ok ? 0 : 1;
  }
  ctx.out.document({{"records", r.records},
                    {"repaired_earlier", r.repaired_earlier},
                    {"damaged", damaged},
                    {"unreadable", left},
                    {"chains_verify", chains}});
  if (!rows.empty()) {
    ctx.out.table({fr ? "Base" : "Database", fr ? "Clé" : "Key", fr ? "Problème" : "Problem",
                   fr ? "État" : "State"},
                  rows);
  }
  for (const auto& [mid, ok] : r.chains) {
    ctx.out.line(fmt::format(
        fmt::runtime(
            ok ? (fr ? "Chaîne d'événements de {} : vérifiée." : "Event chain of {}: verifies.")
               : (fr ? "Chaîne d'événements de {} : rompue." : "Event chain of {}: broken.")),
        mid));
  }
  ctx.out.line(fr ? fmt::format("{} enregistrement(s) lu(s), {} illisible(s), {} réparé(s) "
                                "auparavant.",
                                r.records, left, r.repaired_earlier)
                  : fmt::format("{} record(s) read, {} unreadable, {} repaired earlier.", r.records,
                                left, r.repaired_earlier));
  return left == 0 && broken == 0 ? 0 : k_exit_invalid;
}

} // namespace

Command store_check_command()
{
  return Command{"store check",
                 "read back every record; list the unreadable ones, --repair those that can be",
                 StoreAccess::write,
                 [](CLI::App& app) {
                   app.add_flag("--repair", args.repair,
                                "rewrite the records whose only fault is text that is not UTF-8");
                 },
                 run_store_check};
}

} // namespace pli::admin
