// pli-seed: fills a store with N deliveries through the core API (store::Store), as the
// milter would record them, for bench/cli-bench.sh; and times receipt generation in
// process. Not a test and not installed.
//
//   pli-seed --store DIR --deliveries 1000000
//   pli-seed --pg-url URL --deliveries 1000000         (a PostgreSQL store, its schema made)
//   pli-seed --store DIR --receipts 200 --keys DIR     (receipts per second, in process)
#include "core/receipt/keys.hpp"
#include "core/receipt/pdf.hpp"
#include "core/store/postgresql.hpp"
#include "core/store/store.hpp"
#include "core/util/crypto.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

using namespace pli;

namespace {

constexpr util::Micros k_day = 86400LL * 1000000LL;

const char* const k_subjects[] = {
    // in the order of model::MessageType (1 libre ... 8 rejet)
    "Précisions sur l'exécution du marché",
    "Invitation à concourir — lot n°2",
    "Information de modification : report de la date limite",
    "Réponse à votre question sur le règlement de consultation",
    "Demande de complément : attestation d'assurance",
    "Attribution du marché d'entretien des espaces verts",
    "Notification du marché de travaux",
    "Résultat de votre candidature",
};

const char* const k_domains[] = {"entreprise.example", "btp-alsace.example", "sarl-dupont.example",
                                 "cabinet-leroy.example", "paysages.example"};

int seed(store::Store& st, std::size_t deliveries, util::Micros now)
{
  std::uint64_t x = 88172645463325252ULL; // xorshift, reproducible
  auto rnd = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const auto start = std::chrono::steady_clock::now();
  std::size_t made = 0;
  for (std::size_t i = 0; made < deliveries; ++i) {
    const std::size_t rcpts = std::min<std::size_t>(1 + rnd() % 3, deliveries - made);
    store::NewMessage nm;
    auto& m = nm.message;
    const std::string id = fmt::format("m{:08d}", i);
    m.set_id(id);
    m.set_message_id(fmt::format("seed-{}@buyer.example", i));
    const auto type = 1 + rnd() % 8;
    m.set_type(static_cast<std::uint32_t>(type));
    m.set_subject(fmt::format("{} ({})", k_subjects[type - 1], i));
    m.set_mode(1);
    m.set_sender(fmt::format("acheteur{}@buyer.example", rnd() % 50));
    // Spread over the last year, oldest first (per-delivery step, no 64-bit overflow).
    m.set_sent_at(now - static_cast<util::Micros>(deliveries - made) *
                            (365 * k_day / static_cast<util::Micros>(deliveries)));
    if (i % 20 == 0) {
      m.set_consultation(fmt::format("2024AK_{:03d}", (i / 20) % 200));
    }
    m.set_text_body("Madame, Monsieur, veuillez trouver ci-joint la décision relative à votre "
                    "offre. Cordialement, le service des marchés.");
    const std::string original = fmt::format("Subject: seed {}\r\n\r\nbody {}\r\n", i, i);
    m.set_original_sha256(util::sha256_hex(original));
    m.set_original_size(original.size());
    nm.blobs[m.original_sha256()] = original;
    std::vector<store::NewEvent> events;
    for (std::size_t r = 0; r < rcpts; ++r) {
      store::pb::Delivery d;
      d.set_id(fmt::format("d{:08d}{}", i, r));
      d.set_recipient(fmt::format("contact{}@{}", rnd() % 5000, k_domains[rnd() % 5]));
      d.set_created_at(m.sent_at());
      m.add_delivery_ids(d.id());
      nm.deliveries.push_back(d);
      events.push_back({d.id(), model::EventKind::sent, m.sent_at(), {}, {}});
      const auto fate = rnd() % 100;
      if (fate < 5) {
        events.push_back({d.id(),
                          model::EventKind::failed,
                          m.sent_at() + 60000000,
                          {{"status", "5.1.1"}, {"diagnostic", "550 5.1.1 user unknown"}},
                          {}});
      } else if (fate < 95) {
        events.push_back({d.id(),
                          model::EventKind::delivered,
                          m.sent_at() + 2000000,
                          {{"status", "2.0.0"}, {"remote_mta", "mx." + std::string(k_domains[0])}},
                          {}});
        if (fate < 60) {
          events.push_back({d.id(),
                            model::EventKind::read,
                            m.sent_at() + 3600000000LL,
                            {{"ip", "192.0.2.10"}, {"user_agent", "Mozilla/5.0"}},
                            {}});
        }
      }
    }
    if (auto r = st.create_message(nm); !r) {
      std::cerr << "pli-seed: " << r.error().message << "\n";
      return 1;
    }
    if (auto r = st.append_events(events); !r) {
      std::cerr << "pli-seed: " << r.error().message << "\n";
      return 1;
    }
    made += rcpts;
    if (made % 100000 < rcpts) {
      auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cerr << fmt::format("pli-seed: {} deliveries ({:.0f}/s)\n", made, made / s);
    }
  }
  return 0;
}

int receipts(store::Store& st, std::size_t n, const std::string& keys)
{
  auto key = receipt::load_signing_key(keys);
  if (!key) {
    std::cerr << "pli-seed: " << key.error().message << "\n";
    return 1;
  }
  store::Query q;
  q.per_page = n;
  auto items = st.list(q);
  if (!items) {
    std::cerr << "pli-seed: " << items.error().message << "\n";
    return 1;
  }
  receipt::ReceiptOptions o;
  o.organisation = "Région Exemple";
  o.issued_at = util::now_micros();
  const auto start = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (const auto& it : items->items) {
    auto x = receipt::gather(st, it.delivery.id());
    auto r = x ? receipt::make_receipt(x.value(), o, key.value())
               : util::Result<receipt::Receipt>(x.error());
    if (!r) {
      std::cerr << "pli-seed: " << r.error().message << "\n";
      return 1;
    }
    bytes += r->pdf.size();
  }
  auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("{} receipts in {:.2f} s: {:.0f} receipts/s in process ({:.0f} KB "
                           "each)\n",
                           items->items.size(), s, items->items.size() / s,
                           bytes / 1024.0 / std::max<std::size_t>(1, items->items.size()));
  return 0;
}

// `n` durable read events, one per append_events call as pli-linkd records a POST, from
// `threads` threads over the newest deliveries: events per second (group commit).
int reads(store::Store& st, std::size_t n, std::size_t threads)
{
  store::Query q;
  q.per_page = 1000;
  auto items = st.list(q);
  if (!items || items->items.empty()) {
    std::cerr << "pli-seed: no deliveries to read\n";
    return 1;
  }
  std::vector<std::string> ids;
  for (const auto& it : items->items) {
    ids.push_back(it.delivery.id());
  }
  std::atomic<std::size_t> next{0}, failed{0};
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < std::max<std::size_t>(1, threads); ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < n; i = next++) {
        store::NewEvent e{ids[i % ids.size()], model::EventKind::read, util::now_micros(), {}, {}};
        e.detail["ip"] = "192.0.2.1";
        if (!st.append_events({e})) {
          ++failed;
        }
      }
    });
  }
  for (auto& t : pool) {
    t.join();
  }
  auto s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format("{} durable read events from {} threads in {:.2f} s: {:.0f} "
                           "events/s{}\n",
                           n, threads, s, n / s,
                           failed ? fmt::format(" ({} failed)", failed.load()) : "");
  return failed ? 1 : 0;
}

// Adds a known link token to each of the newest `n` deliveries ("benchtoken" + id, stored
// hashed as every token) and writes the tokens to `file`, one a line, for a load driver.
int tokens(store::Store& st, std::size_t n, const std::string& file)
{
  store::Query q;
  q.per_page = n;
  auto items = st.list(q);
  if (!items) {
    std::cerr << "pli-seed: " << items.error().message << "\n";
    return 1;
  }
  std::ofstream out(file);
  for (const auto& it : items->items) {
    const std::string token = "benchtoken" + it.delivery.id();
    auto r =
        st.add_token(it.delivery.id(), util::sha256_hex(token), util::now_micros() + 365 * k_day);
    if (!r && r.error().code != store::Errc::conflict) {
      std::cerr << "pli-seed: " << r.error().message << "\n";
      return 1;
    }
    out << token << "\n";
  }
  return out ? 0 : 1;
}

} // namespace

int main(int argc, char** argv)
{
  CLI::App app{"pli-seed: fill a store for benchmarks"};
  std::string dir, keys;
  std::size_t deliveries = 0, n_receipts = 0;
  std::uint64_t map_mb = 16384;
  std::string pg_url;
  auto* store_opt = app.add_option("--store", dir, "store directory (LMDB)");
  app.add_option("--pg-url", pg_url, "a PostgreSQL store instead (its schema made if missing)")
      ->excludes(store_opt);
  app.add_option("--deliveries", deliveries, "deliveries to create");
  app.add_option("--receipts", n_receipts, "time this many receipts (newest deliveries)");
  app.add_option("--keys", keys, "keys directory (for --receipts)");
  app.add_option("--map-size-mb", map_mb, "LMDB map size");
  std::size_t n_reads = 0, threads = 1;
  app.add_option("--reads", n_reads, "time this many durable read events (one per call)");
  app.add_option("--threads", threads, "threads for --reads");
  std::size_t n_tokens = 0;
  std::string tokens_file;
  app.add_option("--tokens", n_tokens, "add known link tokens to this many newest deliveries");
  app.add_option("--tokens-file", tokens_file, "where --tokens writes them");
  CLI11_PARSE(app, argc, argv);
  if (dir.empty() && pg_url.empty()) {
    std::cerr << "pli-seed: --store DIR or --pg-url URL\n";
    return 2;
  }
  util::Result<std::unique_ptr<store::Store>> st = util::Error{store::Errc::invalid, "no store"};
  if (!pg_url.empty()) {
    store::PgOptions options;
    options.url = pg_url;
    options.application_name = "pli-seed";
    if (auto v = store::migrate_schema(options); !v) {
      std::cerr << "pli-seed: " << v.error().message << "\n";
      return 1;
    }
    st = store::open_postgresql(options);
  } else {
    st = store::open_lmdb({dir, map_mb, false, deliveries > 0});
  }
  if (!st) {
    std::cerr << "pli-seed: " << st.error().message << "\n";
    return 1;
  }
  if (deliveries > 0) {
    if (int rc = seed(*st.value(), deliveries, util::now_micros()); rc != 0) {
      return rc;
    }
  }
  if (n_receipts > 0) {
    return receipts(*st.value(), n_receipts, keys);
  }
  if (n_tokens > 0) {
    return tokens(*st.value(), n_tokens, tokens_file);
  }
  if (n_reads > 0) {
    return reads(*st.value(), n_reads, threads);
  }
  return 0;
}
