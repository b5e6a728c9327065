// Rate limits shared by pli-linkd's replicas (Store::count_failure, FailureLimiter::share):
// a client that spreads its failures over two replicas on one PostgreSQL store is blocked
// after the limit plus one, not twice the limit; each store counts per window.
#include "core/linkd/http.hpp"
#include "core/store/store.hpp"

#include "tests/unit/store_backends.hpp"

#include <catch2/catch.hpp>

using namespace pli;

namespace {

constexpr std::int64_t k_minute = 60LL * 1000000LL;

linkd::FailureLimiter::SharedCount counting_in(store::Store& st)
{
  return [&st](const std::string& key, std::int64_t start,
               std::int64_t end) -> std::optional<std::uint64_t> {
    auto n = st.count_failure(key, start, end);
    if (!n) {
      return std::nullopt;
    }
    return n.value();
  };
}

} // namespace

TEST_CASE("count_failure counts per key and window", "[store][limits]")
{
  test::AnyStore where(GENERATE(test::Backend::lmdb, test::Backend::postgresql));
  INFO(where.name());
  auto st = where.open();
  CHECK(st->count_failure("unknown:192.0.2.7", 0, k_minute).value() == 1);
  CHECK(st->count_failure("unknown:192.0.2.7", 0, k_minute).value() == 2);
  CHECK(st->count_failure("unknown:192.0.2.8", 0, k_minute).value() == 1);
  CHECK(st->count_failure("unknown:192.0.2.7", k_minute, 2 * k_minute).value() == 1);
}

TEST_CASE("two replicas on one PostgreSQL store share their rate limits", "[store][limits][pg]")
{
  test::AnyStore where(test::Backend::postgresql);
  auto store_a = where.open();
  auto store_b = where.open();
  linkd::FailureLimiter a(5);
  linkd::FailureLimiter b(5);
  a.share("unknown_token", counting_in(*store_a));
  b.share("unknown_token", counting_in(*store_b));
  const std::int64_t now = 1656685605LL * 1000000LL;
  // Alternating between the replicas: 6 failures pass (5 and one more), never 10.
  int passed = 0;
  for (int i = 0; i < 20; ++i) {
    auto& replica = i % 2 == 0 ? a : b;
    if (replica.blocked("198.51.100.9", now + i)) {
      continue;
    }
    replica.failure("198.51.100.9", now + i);
    ++passed;
  }
  CHECK(passed == 6);
  CHECK(a.blocked("198.51.100.9", now + 30));
  CHECK(b.blocked("198.51.100.9", now + 30));
  // Another client is not touched; the next window starts afresh.
  CHECK_FALSE(a.blocked("198.51.100.10", now + 30));
  CHECK_FALSE(b.blocked("198.51.100.9", now + 2 * k_minute));

  // Without sharing (LMDB, one host), each replica counts alone: 10 pass.
  linkd::FailureLimiter c(5);
  linkd::FailureLimiter d(5);
  passed = 0;
  for (int i = 0; i < 20; ++i) {
    auto& replica = i % 2 == 0 ? c : d;
    if (!replica.blocked("198.51.100.9", now + i)) {
      replica.failure("198.51.100.9", now + i);
      ++passed;
    }
  }
  CHECK(passed == 10);
}
