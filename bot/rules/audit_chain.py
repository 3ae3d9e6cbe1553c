"""The audit log's hash chain: canonical encoding, link hashes, and streaming verification."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} in an audit entry")


def canonical_payload(payload: Mapping[str, Any]) -> bytes:
    """One byte string per payload: sorted keys, no spaces, UTF-8, times as ISO UTC."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    ).encode("utf-8")


def record_digest(fields: Mapping[str, Any]) -> str:
    """sha256 of a printed record's fields (a decision, a 校 signature, a draft's form columns):
    its audit entry carries this, so editing the record afterwards fails verification."""
    return hashlib.sha256(canonical_payload(fields)).hexdigest()


def checkpoint_mac(key: str, entry_id: int, entry_hash: str) -> str:
    """HMAC-SHA256 over a checkpoint with a key kept outside the database (SANSHEN_AUDIT_KEY):
    whoever edits the database cannot forge a checkpoint for a shortened chain."""
    message = f"{entry_id}:{entry_hash}".encode("ascii")
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def chain_hash(prev_hash: str, payload: bytes) -> str:
    """sha256(prev_hash ‖ '\\n' ‖ payload), hex."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + payload).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """What the verifier needs from one stored entry."""

    id: int
    prev_hash: str
    hash: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str = ""


def verify_chain(links: Iterable[ChainLink], *, genesis: str = GENESIS) -> VerifyResult:
    """Walk entries in id order; stop at the first whose link or content does not match.

    `genesis` is the hash the first link must point at (GENESIS for a whole chain, the
    previous entry's hash when a chain is verified in parts).
    """
    expected_prev = genesis
    expected_id: int | None = None
    checked = 0
    for link in links:
        if expected_id is not None and link.id != expected_id:
            return VerifyResult(False, checked, link.id, f"缺少第 {expected_id} 条记录（被删除）")
        if not hmac.compare_digest(link.prev_hash, expected_prev):
            return VerifyResult(False, checked, link.id, "与上一条记录的链接不符（前序记录被改动或删除）")
        recomputed = chain_hash(link.prev_hash, canonical_payload(link.payload))
        if not hmac.compare_digest(recomputed, link.hash):
            return VerifyResult(False, checked, link.id, "记录内容与其哈希不符（内容被改动）")
        checked += 1
        expected_prev = link.hash
        expected_id = link.id + 1
    return VerifyResult(True, checked)
