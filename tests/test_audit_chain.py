"""The audit hash chain: canonical encoding and verification of intact and tampered chains."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.rules.audit_chain import (
    GENESIS,
    ChainLink,
    VerifyResult,
    canonical_payload,
    chain_hash,
    checkpoint_mac,
    record_digest,
    verify_chain,
)


def build(n: int) -> list[ChainLink]:
    links: list[ChainLink] = []
    prev = GENESIS
    for i in range(1, n + 1):
        payload = {"id": i, "actor": "wangxm", "action": "approve", "details": {"opinion": f"意见{i}"}}
        digest = chain_hash(prev, canonical_payload(payload))
        links.append(ChainLink(i, prev, digest, payload))
        prev = digest
    return links


def test_canonical_payload_is_order_and_zone_independent() -> None:
    at = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    a = canonical_payload({"b": 1, "a": "审", "at": at})
    b = canonical_payload({"at": at.astimezone(UTC), "a": "审", "b": 1})
    assert a == b == '{"a":"审","at":"2026-11-23T01:00:00+00:00","b":1}'.encode()


def test_intact_chain_verifies() -> None:
    result = verify_chain(build(5))
    assert (result.ok, result.checked, result.first_broken_id) == (True, 5, None)


def test_modified_payload_is_named() -> None:
    links = build(5)
    links[2] = replace(links[2], payload={**links[2].payload, "details": {"opinion": "改过"}})
    result = verify_chain(links)
    assert (result.ok, result.first_broken_id, result.checked) == (False, 3, 2)
    assert "内容" in result.reason


def test_removed_middle_entry_is_named() -> None:
    links = build(5)
    del links[1]
    result = verify_chain(links)
    assert (result.ok, result.first_broken_id) == (False, 3)


def test_reordered_entries_are_caught() -> None:
    links = build(4)
    links[1], links[2] = links[2], links[1]
    assert not verify_chain(links).ok


def test_rehashed_entry_still_breaks_the_next_link() -> None:
    links = build(4)
    forged_payload = {**links[1].payload, "action": "reject"}
    forged = replace(
        links[1],
        payload=forged_payload,
        hash=chain_hash(links[1].prev_hash, canonical_payload(forged_payload)),
    )
    links[1] = forged
    result = verify_chain(links)
    assert (result.ok, result.first_broken_id) == (False, 3)


def rechain(links: list[ChainLink], genesis: str = GENESIS) -> list[ChainLink]:
    """What a forger with database access does: recompute every link after an edit."""
    result: list[ChainLink] = []
    prev = genesis
    for link in links:
        digest = chain_hash(prev, canonical_payload(link.payload))
        result.append(replace(link, prev_hash=prev, hash=digest))
        prev = digest
    return result


def test_an_entry_deleted_and_the_rest_rehashed_is_named_by_the_id_gap() -> None:
    links = build(5)
    del links[1]
    result = verify_chain(rechain(links))
    assert (result.ok, result.checked, result.first_broken_id) == (False, 1, 3)
    assert result.reason == "缺少第 2 条记录（被删除）"


def test_each_failure_names_its_reason_and_counts_what_was_intact() -> None:
    links = build(4)
    links[2] = replace(links[2], prev_hash=links[0].hash)
    result = verify_chain(links)
    assert (result.ok, result.checked, result.first_broken_id) == (False, 2, 3)
    assert result.reason == "与上一条记录的链接不符（前序记录被改动或删除）"

    links = build(4)
    links[3] = replace(links[3], payload={**links[3].payload, "actor": "forger"})
    result = verify_chain(links)
    assert (result.ok, result.checked, result.first_broken_id) == (False, 3, 4)
    assert result.reason == "记录内容与其哈希不符（内容被改动）"


def test_a_chain_verified_in_parts_starts_from_the_previous_hash() -> None:
    links = build(6)
    tail = links[3:]
    assert verify_chain(tail, genesis=links[2].hash) == VerifyResult(True, 3)
    refused = verify_chain(tail)  # the tail does not start at the beginning of the chain
    assert (refused.ok, refused.first_broken_id, refused.checked) == (False, 4, 0)
    assert verify_chain([]) == VerifyResult(True, 0)


def test_the_link_hash_is_sha256_of_the_previous_hash_newline_payload() -> None:
    payload = canonical_payload({"actor": "wangxm", "action": "approve"})
    assert chain_hash(GENESIS, payload) == hashlib.sha256(GENESIS.encode() + b"\n" + payload).hexdigest()
    assert chain_hash(GENESIS, payload) != chain_hash("1" * 64, payload)
    # The first link hangs off 64 zeros: an auditor re-hashing an exported log with nothing but
    # sha256 must know where the chain starts.
    assert GENESIS == "0" * 64


def test_times_without_a_zone_count_as_utc_and_unencodable_values_are_refused() -> None:
    naive = datetime(2026, 11, 23, 1, 0)  # noqa: DTZ001 - the case under test
    assert canonical_payload({"at": naive}) == canonical_payload({"at": naive.replace(tzinfo=UTC)})
    with pytest.raises(TypeError, match="cannot encode set"):
        canonical_payload({"reviewers": {"wangxm"}})
    with pytest.raises(TypeError):
        record_digest({"reviewer": object()})


def test_record_digest_and_checkpoint_mac_bind_their_inputs() -> None:
    decision = {"stage": 1, "reviewer": "wangxm", "decision": "approve"}
    assert record_digest(decision) == hashlib.sha256(canonical_payload(decision)).hexdigest()
    assert record_digest(dict(reversed(decision.items()))) == record_digest(decision)
    assert record_digest({**decision, "reviewer": "forger"}) != record_digest(decision)

    mac = checkpoint_mac("key", 42, "ab" * 32)
    assert mac == hmac.new(b"key", f"42:{'ab' * 32}".encode(), hashlib.sha256).hexdigest()
    assert checkpoint_mac("other", 42, "ab" * 32) != mac
    assert checkpoint_mac("key", 41, "ab" * 32) != mac
