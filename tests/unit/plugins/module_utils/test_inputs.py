"""inputs: the shared checks of operator input (the bad-input table holds the refusals with their messages)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import inputs


def accepted(kind, value):
    return inputs.problems([["v", kind, value]]) == []


@given(st.integers(min_value=-10 ** 6, max_value=10 ** 6))
def test_whole_reads_ints_and_their_plain_text(number):
    assert inputs.whole(number) == number
    assert inputs.whole(str(number)) == number
    assert inputs.whole(str(number) + " ") is None
    assert inputs.whole(" " + str(number)) is None
    assert inputs.whole(str(number) + "\n") is None
    assert inputs.whole(float(number)) is None


@pytest.mark.parametrize("value", [True, False, None, 5.0, "5.0", "+5", "05", "5_000", "\u0665", "", [5], {"a": 5},
                                   "1" * 25])
def test_whole_refuses_what_is_not_a_plain_whole_number(value):
    assert inputs.whole(value) is None


@pytest.mark.parametrize("kind, value, ok", [
    ("int:1..200", 1, True), ("int:1..200", 200, True), ("int:1..200", 201, False), ("int:1..200", 0, False),
    ("int:0..3600", "0", True), ("int:-1..10", -1, True), ("int:-1..10", -2, False),
    ("int>=1", inputs.INT_MAX, True), ("int>=1", inputs.INT_MAX + 1, False),
    ("port", 1, True), ("port", 65535, True), ("port", 65536, False), ("port", True, False),
    ("unprivileged_port", 1023, False), ("unprivileged_port", 1024, True),
    ("port_list:2", [1, 2], True), ("port_list:2", [1, 2, 3], False), ("port_list", [1, True], False),
])
def test_bounded_numbers(kind, value, ok):
    assert accepted(kind, value) is ok


# Checked against PostgreSQL 15 itself (postgres -C with -c max_slot_wal_keep_size=...): 2147483647MB and
# 2047TB are taken, 2147483648MB and 2048TB refused ("Value exceeds integer range"), 512kB rounds to 0.
@pytest.mark.parametrize("value, ok", [
    ("2147483647MB", True), ("2047TB", True), ("2147483648MB", False), ("2048TB", False), ("512kB", False),
    ("1024kB", True), ("10 GB", True), ("-1", True), ("0", True), (10240, True), ("10GB ", False), ("10  GB", False),
    ("10gb", False), ("1.5GB", False), (True, False), ("", False),
])
def test_pg_size_is_bounded_by_what_postgresql_stores(value, ok):
    assert accepted("pg_size", value) is ok


def test_pg_size_in_other_base_units():
    assert accepted("pg_size:kB", "2047GB") and not accepted("pg_size:kB", "2048GB")
    assert accepted("pg_size:8kB", "16TB") is False and accepted("pg_size:8kB", "15TB")
    assert not accepted("pg_size:kB", "-1") and accepted("pg_size:kB:-1", "-1")
    with pytest.raises(ValueError):
        inputs.problems([["v", "pg_size:GB", "1GB"]])


@pytest.mark.parametrize("kind", ["int:5..1", "int:a..b", "int:1-5", "pg_size:MB:0"])
def test_a_kind_the_role_got_wrong_is_an_error_not_a_problem(kind):
    with pytest.raises(ValueError):
        inputs.problems([["v", kind, 1]])


@pytest.mark.parametrize("value", ["::ffff:10.0.0.5", "fe80::1%eth0", "10.0.0.5 ", "\t10.0.0.5", "10.0.0.5\n",
                                   "db.example.com", True, None, ["10.0.0.5"]])
def test_ip_is_strict(value):
    with pytest.raises(inputs.InputError):
        inputs.ip(value)


def test_mapped_networks_are_refused_but_other_ipv6_networks_are_not():
    with pytest.raises(inputs.InputError, match="10.0.0.0/24"):
        inputs.network("::ffff:10.0.0.0/120")
    assert str(inputs.network("fd00::/64")) == "fd00::/64"
    assert str(inputs.network("::/0")) == "::/0"


@pytest.mark.parametrize("entry, ok", [
    ("127.0.0.1", True), ("-::1", True), ("*", True), ("-::*", True), ("10.0.0.5", True),
    ("localhost", False), ("-", False), ("::1\nenable-debug-command yes", False), ("fe80::1%eth0", False),
    ("10.0.0.5 10.0.0.6", False), (True, False),
])
def test_redis_bind_entries_are_addresses(entry, ok):
    try:
        inputs.redis_bind(entry)
    except inputs.InputError:
        assert not ok
    else:
        assert ok


@pytest.mark.parametrize("name, ok", [
    ("mastodon", True), ("replicator", True), ("pgbouncer_stats", True), ("all", False), ("replication", False),
    ("public", False), ("pg_read_all_data", False), ("allusers", True), ("publicist", True),
])
def test_user_names(name, ok):
    assert accepted("name", name) is ok


def test_ws_url_accepts_what_mastodon_sends_to_browsers():
    for url in ("wss://streaming.example.com", "https://streaming.example.com:8443", "wss://[2001:db8::1]",
                "ws://10.0.0.5:4000/"):
        assert accepted("ws_url", url), url
