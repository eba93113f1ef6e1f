from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter import pg_secrets, pgbouncer_ini

FILTERS = pg_secrets.FilterModule().filters()
INI = pgbouncer_ini.FilterModule().filters()


def test_pg_md5_matches_the_guide():
    assert FILTERS["pg_md5"]("password", "mastodon") == "md5d75bb2be2d7086c6148944261a00f605"


def test_pg_scram_sha256_with_fixed_salt_is_reproducible_and_verifies():
    one = FILTERS["pg_scram_sha256"]("pw", salt="c2FsdHNhbHRzYWx0c2FsdA==")
    assert one == FILTERS["pg_scram_sha256"]("pw", salt="c2FsdHNhbHRzYWx0c2FsdA==")
    assert one.startswith("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$")
    assert FILTERS["pg_secret_verifies"](one, "mastodon", "pw")
    assert FILTERS["pg_secret_verifies"](one, "mastodon", "pw", "scram-sha-256")
    assert not FILTERS["pg_secret_verifies"](one, "mastodon", "pw", "md5")
    assert not FILTERS["pg_secret_verifies"]("", "mastodon", "pw")


@pytest.mark.parametrize("call", [
    lambda: FILTERS["pg_md5"]("", "mastodon"),
    lambda: FILTERS["pg_md5"]("pw", "a\nb"),
    lambda: FILTERS["pg_scram_sha256"]("pw", salt="not base64!"),
    lambda: FILTERS["pg_scram_sha256"]("pw", iterations=0),
    lambda: INI["pgbouncer_connstr"]({"name": "pgbouncer", "host": "h"}),
])
def test_bad_input_raises_filter_errors(call):
    with pytest.raises(AnsibleFilterError):
        call()


def test_ini_filters():
    assert INI["pgbouncer_nofile_limit"](100, 1, 20) == {"limit": 184, "wanted": 184}
    assert INI["pgbouncer_database_problems"]([{"name": "x", "host": "h"}]) == []
