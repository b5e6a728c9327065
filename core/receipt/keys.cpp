#include "core/receipt/keys.hpp"

#include "core/receipt/errc.hpp"

#include "core/util/crypto.hpp"
#include "core/util/durable_file.hpp"
#include "core/util/encoding.hpp"
#include "core/util/text.hpp"

#include <fmt/format.h>
#include <sodium.h>

#include <fcntl.h>
#include <grp.h>
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
  return util::Error{Errc::io, fmt::format("{}: {}", what, std::strerror(errno))};
}

// Writes `data` to NAME in the directory `dirfd` durably (util/durable_file.hpp: a new
// temporary file, never a planted one, with `mode` and, as root, owned by `owner`, both set
// on the descriptor before the data; fsynced, then renamed over NAME, a symlink there
// replaced, not followed). The caller flushes the directory once for all the files.
util::Status write_file(int dirfd, const std::string& dir, const std::string& name,
                        const std::string& data, mode_t mode, const struct stat& owner)
{
  util::WriteOptions options;
  options.mode = mode;
  if (::geteuid() == 0) {
    options.owner = util::FileOwner{owner.st_uid, owner.st_gid};
  }
  options.sync = util::Sync::file;
  if (auto st = util::write_file_at(dirfd, dir, name, data, options); !st) {
    return util::Error{Errc::io, st.error().message};
  }
  return util::ok_status();
}

// Opens the key directory DIR, creating it when missing (0750; as root, root:pli when the
// pli group exists, else 0700), and refuses one that is a symlink, not a directory, writable
// by its group or others, or — as root — not owned by root. Returns its descriptor.
util::Result<int> open_key_dir(const std::string& dir, struct stat& sb)
{
  const bool root = ::geteuid() == 0;
  if (::mkdir(dir.c_str(), 0700) == 0) {
    mode_t mode = 0700;
    if (root) {
      if (const struct group* g = ::getgrnam("pli"); g != nullptr) {
        if (::chown(dir.c_str(), 0, g->gr_gid) != 0) {
          return io_error("cannot give " + dir + " to root:pli");
        }
        mode = 0750;
      }
    }
    if (::chmod(dir.c_str(), mode) != 0) {
      return io_error("cannot set the mode of " + dir);
    }
  } else if (errno != EEXIST) {
    return io_error("cannot create " + dir);
  }
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP || errno == ENOTDIR) {
      return util::Error{Errc::io,
                         fmt::format("{} is a symlink or not a directory: the key directory "
                                     "must be a real directory",
                                     dir)};
    }
    return io_error("cannot open " + dir);
  }
  if (::fstat(fd, &sb) != 0) {
    auto e = io_error("cannot read " + dir);
    ::close(fd);
    return e;
  }
  std::string why;
  if ((sb.st_mode & 022) != 0) {
    why = fmt::format("{} is writable by its group or others (mode {:o}): make it 0750 "
                      "(chmod 0750 {})",
                      dir, sb.st_mode & 07777, dir);
  } else if (root && sb.st_uid != 0) {
    why = fmt::format("{} is not owned by root: as root, keys are made only in a root-owned "
                      "directory (chown root:pli {} && chmod 0750 {})",
                      dir, dir, dir);
  }
  if (!why.empty()) {
    ::close(fd);
    return util::Error{Errc::io, why};
  }
  return fd;
}

util::Result<std::string> read_base64_file(const std::string& path, std::size_t expected)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return util::Error{Errc::io, fmt::format("cannot read {}: {}", path, std::strerror(errno))};
  }
  std::stringstream buf;
  buf << in.rdbuf();
  auto raw = util::base64_decode(util::trim(buf.str()));
  if (!raw || raw->size() != expected) {
    return util::Error{Errc::io,
                       fmt::format("{} does not hold a base64 key of {} bytes", path, expected)};
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
  struct stat owner;
  auto dirfd = open_key_dir(dir, owner);
  if (!dirfd) {
    return dirfd.error();
  }
  struct DirCloser
  {
    int fd;
    ~DirCloser() { ::close(fd); }
  } closer{dirfd.value()};
  const std::string key_path = dir + "/receipt.key";
  struct stat existing;
  if (overwrite == Overwrite::refuse &&
      ::fstatat(closer.fd, "receipt.key", &existing, AT_SYMLINK_NOFOLLOW) == 0) {
    return util::Error{Errc::exists,
                       fmt::format("{} already exists (use --force to replace it; receipts "
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
  // As root: root-owned, readable by the directory's group (pli); else the owner's alone.
  const mode_t key_mode = ::geteuid() == 0 ? 0640 : 0600;
  auto st = write_file(closer.fd, dir, "receipt.key", seed_b64 + "\n", key_mode, owner);
  sodium_memzero(seed_b64.data(), seed_b64.size());
  if (!st) {
    return st.error();
  }
  if (auto s2 = write_file(closer.fd, dir, "receipt.pub", util::base64(kp.public_key) + "\n", 0644,
                           owner);
      !s2) {
    return s2.error();
  }
  if (auto s3 =
          write_file(closer.fd, dir, "receipt.pub.pem", public_key_pem(kp.public_key), 0644, owner);
      !s3) {
    return s3.error();
  }
  if (auto st = util::sync_dir_at(closer.fd, dir); !st) {
    return util::Error{Errc::io, st.error().message};
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
