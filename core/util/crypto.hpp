// Hashing and randomness (libsodium): SHA-256, random bytes, random identifiers.
#pragma once

#include <sodium.h>

#include <string>
#include <string_view>

namespace pli::util {

// Initialises libsodium once; throws std::runtime_error if it cannot.
void crypto_init();
// 32 raw bytes.
std::string sha256(std::string_view data);
std::string sha256_hex(std::string_view data);

// SHA-256 of data given in pieces (no copy of the whole): update() as often as needed,
// then hex() once.
class Sha256
{
public:
  Sha256();
  void update(std::string_view data);
  // The lower-case hex digest of everything given to update().
  std::string hex();

private:
  crypto_hash_sha256_state m_state{};
};

std::string random_bytes(std::size_t n);
// An unguessable identifier: `prefix` + base32 of `bytes` random bytes (lower-case, [a-z2-7]).
std::string random_id(std::string_view prefix, std::size_t bytes = 10);

} // namespace pli::util
