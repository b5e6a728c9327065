// The receipt signing key pair (Ed25519, libsodium): `receipt.key` holds the 32-byte seed
// in base64 (mode 0600), `receipt.pub` the 32-byte public key in base64, and
// `receipt.pub.pem` the same public key as SPKI PEM for `openssl pkeyutl -verify`.
// A key id ("kid") is the hex of the first 8 bytes of SHA-256(public key).
#pragma once

#include "core/util/result.hpp"

#include <string>

namespace pli::receipt {

enum class Overwrite
{
  refuse,
  force
};

struct KeyPair
{
  std::string public_key; // 32 raw bytes
  std::string secret_key; // 64 raw bytes (libsodium's seed || public key); empty for a
                          // verification-only key
  std::string kid;
};

// hex of the first 8 bytes of SHA-256(public_key).
std::string key_id(const std::string& public_key);

// Creates DIR when missing (as root: root:pli 0750 when the pli group exists, else 0700)
// and writes a new key pair in it. Every file is created under a fresh temporary name with
// O_EXCL|O_NOFOLLOW, given its owner and mode on the descriptor, then renamed into place:
// a symlink planted in DIR is never followed. As root the files are root-owned with DIR's
// group, receipt.key 0640 (the pli user reads it, cannot change it); otherwise
// receipt.key is 0600. Errors (errc.hpp): Errc::exists when receipt.key exists (a symlink
// counts) and `overwrite` is refuse; Errc::io for I/O failures and for a DIR that is a symlink,
// writable by its group or others, or (as root) not owned by root, with the reason.
util::Result<KeyPair> generate_keys(const std::string& dir, Overwrite overwrite);
// Reads DIR/receipt.key (and derives the public key). Errors: Errc::io with the reason.
util::Result<KeyPair> load_signing_key(const std::string& dir);
// Reads DIR/receipt.pub. Errors: Errc::io with the reason.
util::Result<KeyPair> load_public_key(const std::string& dir);

// SPKI PEM of a raw Ed25519 public key.
std::string public_key_pem(const std::string& public_key);

} // namespace pli::receipt
