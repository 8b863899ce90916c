"""The one "fire once" mechanism of the rules engine and the ingest cooldowns, on real Redis:
claims, their staleness, and a claim given back when storing fails."""

import pytest
from django.db import DatabaseError

from alerts.fire_once import (
    CLAIM_STALE_MS,
    ClaimStatus,
    claim_status,
    hash_claims_swap,
    key_claim,
    key_release,
    store_claimed,
)


def test_a_claim_is_stale_only_when_old_and_without_its_row():
    asked = []

    def row_exists(answer):
        def ask():
            asked.append(answer)
            return answer

        return ask

    assert claim_status(CLAIM_STALE_MS - 1, row_exists(False)) is ClaimStatus.FRESH
    assert asked == []  # a fresh claim never costs a query
    assert claim_status(CLAIM_STALE_MS, row_exists(True)) is ClaimStatus.STORED
    assert claim_status(CLAIM_STALE_MS, row_exists(False)) is ClaimStatus.STALE


def test_hash_claims_change_only_fields_that_still_hold_what_was_read(redis_client):
    redis_client.hset("claims", "a", "old")
    done = hash_claims_swap(
        redis_client, "claims", [("a", "old", "new"), ("b", "", "made"), ("c", "x", "y")]
    )
    assert done == {"a": True, "b": True, "c": False}
    assert redis_client.hgetall("claims") == {"a": "new", "b": "made"}
    assert hash_claims_swap(redis_client, "claims", [("b", "made", "")]) == {"b": True}
    assert not redis_client.hexists("claims", "b")
    assert hash_claims_swap(redis_client, "claims", []) == {}


def test_a_key_claim_is_taken_once_and_given_back_only_by_its_holder(redis_client):
    assert key_claim(redis_client, "cooldown", 1, 60)
    assert not key_claim(redis_client, "cooldown", 2, 60)
    key_release(redis_client, "cooldown", 2)
    assert redis_client.get("cooldown") == "1"
    key_release(redis_client, "cooldown", 1)
    assert key_claim(redis_client, "cooldown", 2, 60)


def test_a_failed_store_gives_the_claim_back_and_raises(redis_client):
    key_claim(redis_client, "cooldown", 7, 60)

    def store():
        raise DatabaseError("connection lost")

    with pytest.raises(DatabaseError):
        store_claimed(store, lambda: key_release(redis_client, "cooldown", 7))
    assert redis_client.get("cooldown") is None
    assert store_claimed(lambda: "row", lambda: pytest.fail("given back")) == "row"
