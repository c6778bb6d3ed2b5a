"""The encryption providers of Kubernetes' EncryptionConfiguration, byte for byte.

Each (provider, key) pair is a transformer with the prefix kube-apiserver writes
in front of what it stores, ``k8s:enc:<provider>:v1:<key name>:``, so a value
says which key it needs and data moved from a kube-apiserver's etcd reads here:

    aesgcm     prefix + nonce (12 random bytes) + AES-GCM(data, AAD = the storage key)
    aescbc     prefix + IV (16 random bytes) + AES-CBC(PKCS#7-padded data)
    secretbox  prefix + nonce (24 random bytes) + XSalsa20-Poly1305(data)  (NaCl)
    identity   the data itself, no prefix

AES comes from ``cryptography`` (already the CA's library); XSalsa20-Poly1305
is not in it, so secretbox uses PyNaCl (libsodium), as Go's x/crypto secretbox
is NaCl's. aesgcm binds a value to its key (the AAD), so a value copied under
another name does not decrypt; its random 96-bit nonces make Kubernetes advise
rotating its key every 200,000 writes. secretbox is the default.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENCRYPTED = b"k8s:enc:"  # every encrypting provider's prefix starts so
# Key sizes in bytes each provider accepts (Kubernetes' validation).
KEY_SIZES = {"aesgcm": (16, 24, 32), "aescbc": (16, 24, 32), "secretbox": (32,)}
KEYED = tuple(KEY_SIZES)


class DecryptError(Exception):
    """A stored value that a configured key should open did not: a different
    secret under the same key name, or tampered bytes."""


@dataclass(frozen=True)
class KeyTransformer:
    """One provider with one key: ``seal``/``unseal`` take (data, storage key)."""

    provider: str
    key_name: str
    prefix: bytes
    seal: Callable[[bytes, bytes], bytes]
    unseal: Callable[[bytes, bytes], bytes]


def identity() -> KeyTransformer:
    return KeyTransformer("identity", "", b"", lambda data, _: data, lambda data, _: data)


def keyed(provider: str, name: str, secret: bytes) -> KeyTransformer:
    seal, unseal = _CIPHERS[provider](secret)
    return KeyTransformer(provider, name, f"k8s:enc:{provider}:v1:{name}:".encode(),
                          seal, unseal)


def new_secret(provider: str) -> bytes:
    """A fresh random key of the provider's largest size."""
    return os.urandom(max(KEY_SIZES[provider]))


Ciphers = tuple[Callable[[bytes, bytes], bytes], Callable[[bytes, bytes], bytes]]


def _aesgcm(secret: bytes) -> Ciphers:
    aead = AESGCM(secret)

    def seal(data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, data, aad)

    def unseal(data: bytes, aad: bytes) -> bytes:
        if len(data) < 12 + 16:
            raise DecryptError("the value is too short for AES-GCM")
        try:
            return aead.decrypt(data[:12], data[12:], aad)
        except InvalidTag:
            raise DecryptError("AES-GCM authentication failed") from None

    return seal, unseal


def _aescbc(secret: bytes) -> Ciphers:
    algorithm = algorithms.AES(secret)

    def seal(data: bytes, _: bytes) -> bytes:
        iv = os.urandom(16)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(data) + padder.finalize()
        encryptor = Cipher(algorithm, modes.CBC(iv)).encryptor()
        return iv + encryptor.update(padded) + encryptor.finalize()

    def unseal(data: bytes, _: bytes) -> bytes:
        if len(data) < 32 or len(data) % 16:
            raise DecryptError("the value is not whole AES-CBC blocks")
        decryptor = Cipher(algorithm, modes.CBC(data[:16])).decryptor()
        padded = decryptor.update(data[16:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        try:
            return unpadder.update(padded) + unpadder.finalize()
        except ValueError:
            raise DecryptError("AES-CBC padding is invalid (wrong key?)") from None

    return seal, unseal


def _secretbox(secret: bytes) -> Ciphers:
    box = nacl.secret.SecretBox(secret)

    def seal(data: bytes, _: bytes) -> bytes:
        return bytes(box.encrypt(data))  # nonce (24 random bytes) + box, as NaCl lays it

    def unseal(data: bytes, _: bytes) -> bytes:
        try:
            return bytes(box.decrypt(data))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise DecryptError("secretbox authentication failed") from None

    return seal, unseal


_CIPHERS: dict[str, Callable[[bytes], Ciphers]] = {
    "aesgcm": _aesgcm, "aescbc": _aescbc, "secretbox": _secretbox,
}
