"""The audit hash chain: canonical encoding and verification of intact and tampered chains."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from bot.rules.audit_chain import GENESIS, ChainLink, canonical_payload, chain_hash, verify_chain


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
    forged = replace(links[1], payload=forged_payload, hash=chain_hash(links[1].prev_hash, canonical_payload(forged_payload)))
    links[1] = forged
    result = verify_chain(links)
    assert (result.ok, result.first_broken_id) == (False, 3)
