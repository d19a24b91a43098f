"""Duplicated frames on the link (a bridge or a retransmitting adapter sends a frame twice): an answer
carrying a sequence number of an earlier request or attempt is skipped, never retried and never an
error, so the session stays exact and does not spend its retries on stale answers."""

from __future__ import annotations

import numpy as np
import pytest
from test_device_faults import m4, proxied, run_batch  # noqa: F401 - m4 is a fixture

pytestmark = pytest.mark.device


@pytest.mark.parametrize("mode", [
    {"dup": 0.5, "seed": 11},                                  # both directions
    {"dup": 1.0, "dup_directions": "requests", "seed": 12},    # the device answers everything twice
], ids=["both", "requests"])  # fmt: skip
def test_duplicated_frames_are_skipped(m4, mode):  # noqa: F811
    c, xq, expected, fw = m4
    with proxied(fw, **mode) as (s, proxy):
        s.link.timeout = 2.0  # duplicates double the device's work: on a loaded machine 0.4 s is too tight
        got = run_batch(s, xq[:8])
        stats = dict(s.link.stats)
    assert proxy.counts["duplicated"] > 20, proxy.counts
    assert np.array_equal(got, expected[:8])
    assert stats["stale"] > 0 and stats["retries"] == 0, stats  # duplicates alone never cost a retry


def test_duplicated_corrupt_requests_cost_one_retry_each(m4):  # noqa: F811
    """Every request arrives twice, some corrupted: the device rejects both copies, with the same
    sequence number. Only the first rejection is about the current attempt; the second is stale
    once the host has asked again. So at most one immediate retry per flipped bit (it was two), and
    the session stays exact."""
    c, xq, expected, fw = m4
    with proxied(fw, dup=1.0, dup_directions="requests", flip=0.0008, seed=21, flip_directions="requests") as (s, proxy):
        s.link.timeout = 2.0
        got = run_batch(s, xq[:12])
        stats = dict(s.link.stats)
    assert proxy.counts["flipped"] >= 5, proxy.counts
    assert np.array_equal(got, expected[:12])
    immediate = stats["retries"] - stats["timeouts"]  # retries caused by an answer, not by waiting (load-dependent)
    assert 0 < immediate <= proxy.counts["flipped"], (stats, proxy.counts)
