"""WeCom callback crypto written from the protocol text (facts §1.4–1.5), independent of wechatpy.

The simulator encrypts with this, the bot decrypts with wechatpy: a callback that round-trips
proves both follow the documented scheme, not merely each other.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from typing import TYPE_CHECKING

from Crypto.Cipher import AES

if TYPE_CHECKING:
    from Crypto.Cipher._mode_cbc import CbcMode

BLOCK = 32  # WeCom pads PKCS#7-style to a multiple of 32 bytes, not AES's 16


class CryptoError(Exception):
    """Signature, padding or receive-id check failed (Tencent ierror −40001/−40005/−40007)."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """msg_signature: SHA1 of the four strings sorted and concatenated."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


class CallbackCrypto:
    """Encrypts and decrypts callback payloads for one app (token, EncodingAESKey, CorpID)."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise CryptoError("EncodingAESKey must be 43 characters")
        self.token = token
        self.receive_id = receive_id
        self._key = base64.b64decode(encoding_aes_key + "=")
        if len(self._key) != 32:
            raise CryptoError("EncodingAESKey does not decode to 32 bytes")

    def _cipher(self) -> CbcMode:
        return AES.new(self._key, AES.MODE_CBC, self._key[:16])

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """Base64(AES(random16 ‖ len ‖ msg ‖ receive_id)) with 32-byte padding."""
        body = message.encode("utf-8")
        prefix = random16 if random16 is not None else os.urandom(16)
        if len(prefix) != 16:
            raise CryptoError("random prefix must be 16 bytes")
        plain = prefix + struct.pack(">I", len(body)) + body + self.receive_id.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        return base64.b64encode(self._cipher().encrypt(plain)).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        """The message inside `encrypted`; raises CryptoError on bad padding or another corp."""
        try:
            raw = base64.b64decode(encrypted, validate=True)
        except ValueError as exc:
            raise CryptoError("not base64") from exc
        if not raw or len(raw) % 16:
            raise CryptoError("ciphertext length is not a multiple of the block size")
        plain = self._cipher().decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", plain[16:20])
        message, receive_id = plain[20 : 20 + length], plain[20 + length :]
        if len(message) != length:
            raise CryptoError("length field exceeds the plaintext")
        if receive_id.decode("utf-8", "replace") != self.receive_id:
            raise CryptoError("receive id mismatch")
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CryptoError("message is not UTF-8 (tampered ciphertext?)") from exc

    def sign(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET verification as a receiver would do it."""
        if self.sign(timestamp, nonce, echostr) != msg_signature:
            raise CryptoError("bad signature")
        return self.decrypt(echostr)

    def decrypt_envelope(self, encrypted: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        if self.sign(timestamp, nonce, encrypted) != msg_signature:
            raise CryptoError("bad signature")
        return self.decrypt(encrypted)

    def reply_envelope(self, message: str, nonce: str, timestamp: str, random16: bytes | None = None) -> str:
        """The passive-reply envelope (facts §1.6), in wechatpy's byte layout."""
        encrypted = self.encrypt(message, random16)
        sig = self.sign(timestamp, nonce, encrypted)
        return (
            f"<xml>\n<Encrypt><![CDATA[{encrypted}]]></Encrypt>\n"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>\n"
            f"<TimeStamp>{timestamp}</TimeStamp>\n<Nonce><![CDATA[{nonce}]]></Nonce>\n</xml>"
        )
