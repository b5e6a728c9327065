#include "core/receipt/keys.hpp"

#include "core/util/crypto.hpp"
#include "core/util/encoding.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace pli::receipt {

namespace {

util::Error io_error(const std::string& what)
{
  return util::Error{2, fmt::format("{}: {}", what, std::strerror(errno))};
}

// Writes `data` to PATH through PATH.tmp (fsync, rename), with `mode`; owned by `owner`
// (the key directory's owner, e.g. pli, when root runs `pli keygen`).
util::Status write_file(const std::string& path, const std::string& data, mode_t mode,
                        const struct stat& owner)
{
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return io_error("cannot create " + tmp);
  }
  ::fchmod(fd, mode);
  if (::geteuid() == 0 && ::fchown(fd, owner.st_uid, owner.st_gid) != 0) {
    auto e = io_error("cannot give " + tmp + " to the key directory's owner");
    ::close(fd);
    return e;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      auto e = io_error("cannot write " + tmp);
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    return io_error("cannot write " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return io_error("cannot rename " + tmp);
  }
  return util::ok_status();
}

util::Result<std::string> read_base64_file(const std::string& path, std::size_t expected)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return util::Error{2, fmt::format("cannot read {}: {}", path, std::strerror(errno))};
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto raw = util::base64_decode(util::trim(buf.str()));
  if (!raw || raw->size() != expected) {
    return util::Error{2, fmt::format("{} does not hold a base64 key of {} bytes", path, expected)};
  }
  return *raw;
}

} // namespace

std::string key_id(const std::string& public_key)
{
  return util::hex_encode(util::sha256(public_key).substr(0, 8));
}

std::string public_key_pem(const std::string& public_key)
{
  static const unsigned char prefix[] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                         0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
  std::string der(reinterpret_cast<const char*>(prefix), sizeof prefix);
  der += public_key;
  return "-----BEGIN PUBLIC KEY-----\n" + util::base64(der) + "\n-----END PUBLIC KEY-----\n";
}

util::Result<KeyPair> generate_keys(const std::string& dir, Overwrite overwrite)
{
  util::crypto_init();
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return io_error("cannot create " + dir);
  }
  struct stat owner;
  if (::stat(dir.c_str(), &owner) != 0) {
    return io_error("cannot read " + dir);
  }
  const std::string key_path = dir + "/receipt.key";
  if (overwrite == Overwrite::refuse && ::access(key_path.c_str(), F_OK) == 0) {
    return util::Error{1, fmt::format("{} already exists (use --force to replace it; receipts "
                                      "signed with it then need the old receipt.pub to verify)",
                                      key_path)};
  }
  unsigned char seed[crypto_sign_SEEDBYTES];
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(pk, sk, seed);
  KeyPair kp;
  kp.public_key.assign(reinterpret_cast<const char*>(pk), sizeof pk);
  kp.secret_key.assign(reinterpret_cast<const char*>(sk), sizeof sk);
  kp.kid = key_id(kp.public_key);
  std::string seed_b64 =
      util::base64(std::string(reinterpret_cast<const char*>(seed), sizeof seed));
  sodium_memzero(seed, sizeof seed);
  sodium_memzero(sk, sizeof sk);
  if (auto st = write_file(key_path, seed_b64 + "\n", 0600, owner); !st) {
    return st.error();
  }
  sodium_memzero(seed_b64.data(), seed_b64.size());
  if (auto st = write_file(dir + "/receipt.pub", util::base64(kp.public_key) + "\n", 0644, owner);
      !st) {
    return st.error();
  }
  if (auto st = write_file(dir + "/receipt.pub.pem", public_key_pem(kp.public_key), 0644, owner);
      !st) {
    return st.error();
  }
  return kp;
}

util::Result<KeyPair> load_signing_key(const std::string& dir)
{
  util::crypto_init();
  auto seed = read_base64_file(dir + "/receipt.key", crypto_sign_SEEDBYTES);
  if (!seed) {
    return seed.error();
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  unsigned char sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, reinterpret_cast<const unsigned char*>(seed->data()));
  sodium_memzero(seed->data(), seed->size());
  KeyPair kp;
  kp.public_key.assign(reinterpret_cast<const char*>(pk), sizeof pk);
  kp.secret_key.assign(reinterpret_cast<const char*>(sk), sizeof sk);
  sodium_memzero(sk, sizeof sk);
  kp.kid = key_id(kp.public_key);
  return kp;
}

util::Result<KeyPair> load_public_key(const std::string& dir)
{
  auto pk = read_base64_file(dir + "/receipt.pub", crypto_sign_PUBLICKEYBYTES);
  if (!pk) {
    return pk.error();
  }
  KeyPair kp;
  kp.public_key = pk.value();
  kp.kid = key_id(kp.public_key);
  return kp;
}

} // namespace pli::receipt
