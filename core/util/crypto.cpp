#include "core/util/crypto.hpp"

#include "core/util/encoding.hpp"

#include <sodium.h>

#include <mutex>
#include <stdexcept>

namespace pli::util {

void crypto_init()
{
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) {
      throw std::runtime_error("libsodium could not be initialised");
    }
  });
}

std::string sha256(std::string_view data)
{
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(data.data()), data.size());
  return out;
}

std::string sha256_hex(std::string_view data)
{
  return hex_encode(sha256(data));
}

Sha256::Sha256()
{
  crypto_hash_sha256_init(&m_state);
}

void Sha256::update(std::string_view data)
{
  crypto_hash_sha256_update(&m_state, reinterpret_cast<const unsigned char*>(data.data()),
                            data.size());
}

std::string Sha256::hex()
{
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256_final(&m_state, reinterpret_cast<unsigned char*>(out.data()));
  return hex_encode(out);
}

std::string random_bytes(std::size_t n)
{
  crypto_init();
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

std::string random_id(std::string_view prefix, std::size_t bytes)
{
  return std::string(prefix) + base32_lower(random_bytes(bytes));
}

} // namespace pli::util
