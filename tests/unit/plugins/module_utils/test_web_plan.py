from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import web_plan as wp


@pytest.mark.parametrize(
    "vcpus, mem, processes, threads, limited_by",
    [
        (1, 2048, 1, 5, "cpu"),
        (2, 4096, 2, 5, "cpu"),
        (8, 32768, 8, 5, "cpu"),
        (8, 2048, 2, 10, "memory"),  # 1024 MB for Puma fits 2 workers; 8x5 wanted, capped at 10
        (4, 2400, 3, 7, "memory"),  # 1200 MB fits 3 workers; ceil(20 / 3) = 7
        (4, 300, 1, 10, "memory"),  # not even one worker fits: still one, at the ceiling
        (16, None, 16, 5, "cpu"),  # memory unknown: CPU alone
    ],
)
def test_table(vcpus, mem, processes, threads, limited_by):
    got = wp.puma_defaults(vcpus, mem)
    assert (got["processes"], got["threads"], got["limited_by"]) == (processes, threads, limited_by)
    assert str(processes) in got["formula"]


def test_knobs_and_strings():
    got = wp.puma_defaults("4", "8192", worker_memory_mb=1024, memory_share=0.25, base_threads=3, max_threads=6)
    assert (got["processes"], got["threads"]) == (2, 6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"vcpus": 0}, "vcpus must be at least 1"),
        ({"vcpus": True}, "whole number"),
        ({"vcpus": "x"}, "whole number"),
        ({"vcpus": 2, "memory_share": 0}, "memory_share"),
        ({"vcpus": 2, "memory_share": "lots"}, "memory_share"),
        ({"vcpus": 2, "base_threads": 8, "max_threads": 4}, "below base_threads"),
        ({"vcpus": 2, "worker_memory_mb": -1}, "worker_memory_mb"),
    ],
)
def test_errors(kwargs, message):
    with pytest.raises(wp.WebPlanError, match=message):
        wp.puma_defaults(**kwargs)


def test_from_facts_accepts_both_fact_styles():
    assert wp.puma_defaults_from_facts({"processor_vcpus": 2, "memtotal_mb": 4096})["processes"] == 2
    assert wp.puma_defaults_from_facts({"ansible_processor_vcpus": 3})["processes"] == 3
    with pytest.raises(wp.WebPlanError, match="hardware subset"):
        wp.puma_defaults_from_facts({"distribution": "Debian"})
    with pytest.raises(wp.WebPlanError, match="mapping"):
        wp.puma_defaults_from_facts(["nope"])


@given(
    vcpus=st.integers(1, 256),
    mem=st.one_of(st.none(), st.integers(1, 1 << 20)),
    base=st.integers(1, 8),
    extra=st.integers(0, 16),
)
def test_properties(vcpus, mem, base, extra):
    got = wp.puma_defaults(vcpus, mem, base_threads=base, max_threads=base + extra)
    # Never more workers than vCPUs, never fewer than one, threads within their bounds.
    assert 1 <= got["processes"] <= vcpus
    assert base <= got["threads"] <= base + extra
    # Processes are preferred: threads only rise above base when memory took workers away.
    if got["limited_by"] == "cpu":
        assert got["processes"] == vcpus and got["threads"] == base
    else:
        assert got["processes"] < vcpus
        # Total concurrency reaches the CPU target unless the ceiling stops it.
        assert got["processes"] * got["threads"] >= min(vcpus * base, got["processes"] * (base + extra))
