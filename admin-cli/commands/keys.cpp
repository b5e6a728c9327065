// pli keygen [--force]: the receipt signing key pair in keys.dir.
// pli check-config: the config file, and what the CLI needs beside it.
#include "core/receipt/keys.hpp"
#include "admin-cli/cli.hpp"

#include <fmt/format.h>

#include <sys/stat.h>

namespace pli::admin {

namespace {

struct KeygenArgs
{
  bool force = false;
} kargs;

int run_keygen(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  auto kp = receipt::generate_keys(ctx.config.keys.dir, kargs.force ? receipt::Overwrite::force
                                                                    : receipt::Overwrite::refuse);
  if (!kp) {
    throw Failure(k_exit_cant_create, kp.error().message);
  }
  const std::string dir = ctx.config.keys.dir;
  ctx.out.document({{"dir", dir},
                    {"kid", kp->kid},
                    {"private_key", dir + "/receipt.key"},
                    {"public_key", dir + "/receipt.pub"},
                    {"public_key_pem", dir + "/receipt.pub.pem"}});
  ctx.out.line(fr ? fmt::format("Clé de signature des accusés de réception créée (Ed25519, "
                                "identifiant {}) :",
                                kp->kid)
                  : fmt::format("Receipt signing key created (Ed25519, key id {}):", kp->kid));
  ctx.out.line("  " + dir + "/receipt.key      (0600)");
  ctx.out.line("  " + dir + "/receipt.pub");
  ctx.out.line("  " + dir + "/receipt.pub.pem  (openssl pkeyutl -verify)");
  return 0;
}

int run_check_config(Context& ctx)
{
  const bool fr = ctx.config.organisation.locale == model::Locale::fr;
  std::vector<std::string> warnings;
  struct stat sb;
  if (::stat(ctx.config.store.path.c_str(), &sb) != 0) {
    warnings.push_back(fr ? fmt::format("store.path {} n'existe pas encore (créé au premier "
                                        "démarrage)",
                                        ctx.config.store.path)
                          : fmt::format("store.path {} does not exist yet (created on first start)",
                                        ctx.config.store.path));
  }
  auto key = receipt::load_signing_key(ctx.config.keys.dir);
  if (!key) {
    warnings.push_back(
        fr ? fmt::format("pas de clé de signature des accusés de réception ({}) : "
                         "lancez `pli keygen`",
                         key.error().message)
           : fmt::format("no receipt signing key ({}): run `pli keygen`", key.error().message));
  }
  ctx.out.document({{"file", ctx.config.file},
                    {"valid", true},
                    {"warnings", warnings},
                    {"kid", key ? nlohmann::json(key->kid) : nlohmann::json(nullptr)}});
  ctx.out.line(ctx.config.file + ": ok");
  for (const auto& w : warnings) {
    ctx.out.line((fr ? "attention : " : "warning: ") + w);
  }
  return 0;
}

} // namespace

Command keygen_command()
{
  return Command{
      "keygen", "create the receipt signing key pair in keys.dir", StoreAccess::none,
      [](CLI::App& app) { app.add_flag("--force", kargs.force, "replace an existing key"); },
      run_keygen};
}

Command check_config_command()
{
  return Command{"check-config", "check the config file (exit 78 with FILE:LINE when wrong)",
                 StoreAccess::none, [](CLI::App&) {}, run_check_config};
}

} // namespace pli::admin
