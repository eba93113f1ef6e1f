from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import pgbouncer_ini as pi
from ansible_collections.fediops.mastodon.plugins.module_utils import service_apply

MASTODON = {"name": "mastodon_production", "host": "127.0.0.1", "port": 5432, "dbname": "mastodon_production"}


def test_connstr_of_the_guide_entry_has_no_password():
    assert pi.connstr(MASTODON) == "host=127.0.0.1 port=5432 dbname=mastodon_production"
    assert pi.connstr({"name": "mastodon_replica", "host": "10.0.0.2", "port": "5433", "dbname": "m",
                       "pool_size": 10, "pool_mode": "transaction"}) == (
        "host=10.0.0.2 port=5433 dbname=m pool_size=10 pool_mode=transaction")


@pytest.mark.parametrize("entry, fragment", [
    ({"name": "pgbouncer", "host": "h", "port": 1}, "admin console"),
    ({"name": "bad name", "host": "h"}, "name must be"),
    ({"name": "x", "host": "a b"}, "host"),
    ({"name": "x", "host": "h'"}, "host"),
    ({"name": "x", "host": ""}, "host"),
    ({"name": "x", "host": "h", "port": 0}, "port"),
    ({"name": "x", "host": "h", "port": 70000}, "port"),
    ({"name": "x", "host": "h", "port": "abc"}, "port"),
    ({"name": "x", "host": "h", "dbname": "a=b"}, "dbname"),
    ({"name": "x", "host": "h", "password": "p"}, "unknown keys password"),
    ({"name": "x", "host": "h", "pool_mode": "sometimes"}, "pool_mode"),
    ({"name": "x", "host": "h", "pool_size": -1}, "pool_size"),
    ("x", "not a mapping"),
])
def test_database_problems(entry, fragment):
    problems = pi.database_problems([entry])
    assert len(problems) >= 1 and fragment in " ".join(problems)
    if isinstance(entry, dict):
        with pytest.raises(pi.IniError):
            pi.connstr(entry)


def test_duplicate_names_are_a_problem():
    assert "listed twice" in pi.database_problems([MASTODON, MASTODON])[0]
    assert pi.database_problems([MASTODON]) == []


DEBIAN = """[databases]
[users]
[pgbouncer]
logfile = /var/log/postgresql/pgbouncer.log
listen_addr = localhost
listen_port = 6432
;listen_port = 7000
auth_type = md5
"""


def restart_keys(old_text, new_text):
    """The start-only settings that differ, as service_apply compares them."""
    old, new = (service_apply.restart_settings(text, "pgbouncer") for text in (old_text, new_text))
    return sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))


@pytest.mark.parametrize("change, keys", [
    ("listen_addr = 127.0.0.1", ["listen_addr"]),
    ("LISTEN_PORT = 6433", ["listen_port"]),
    ("unix_socket_dir = /tmp", ["unix_socket_dir"]),
    ("auth_type = scram-sha-256", []),
    ("max_client_conn = 1000", []),
    ("pool_mode = transaction", []),
])
def test_restart_keys(change, keys):
    new = DEBIAN + change + "\n"
    assert restart_keys(DEBIAN, new) == keys


def test_restart_keys_ignore_comments_and_databases():
    new = DEBIAN.replace("[databases]", "[databases]\nmastodon_production = host=127.0.0.1") + "; listen_port = 1\n"
    assert restart_keys(DEBIAN, new) == []
    assert restart_keys("", DEBIAN) == ["listen_addr", "listen_port"]


@pytest.mark.parametrize("args, expected", [
    ((100, 1, 20, 0), (184, 184)),
    ((1000, 2, 20, 5), (1114, 1114)),
    ((30000, 1, 20, 0), (20000, 30084)),
])
def test_nofile_limit(args, expected):
    assert pi.nofile_limit(*args) == expected


@given(st.integers(1, 50000), st.integers(1, 5), st.integers(1, 200), st.integers(0, 50))
def test_nofile_limit_covers_clients_and_servers_up_to_the_cap(clients, pools, size, reserve):
    limit, wanted = pi.nofile_limit(clients, pools, size, reserve)
    assert wanted >= clients + pools * (size + reserve)
    assert limit == min(wanted, 20000)
