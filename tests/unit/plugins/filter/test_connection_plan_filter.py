from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.connection_plan import FilterModule, connection_plan
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import plan


def test_filter_is_registered():
    assert FilterModule().filters()["connection_plan"] is connection_plan


def test_filter_matches_module_utils():
    data = {"web": {"processes": 2, "threads": 5}, "sidekiq": [{"name": "push", "threads": 40}],
            "pgbouncer": {"max_client_conn": 30, "default_pool_size": 10}}
    assert connection_plan(data) == plan(**data)
    assert connection_plan(data)["feasible"] is False


def test_keywords_override_the_input():
    result = connection_plan({"web": {"processes": 2, "threads": 5}}, web={"processes": 1, "threads": 1},
                             streaming={"instances": 2})
    assert result["client_connections"] == 21


@pytest.mark.parametrize("data, message", [
    ([1], "must be a mapping"),
    ({"sidekiq": [{"name": "a", "threads": 4, "db_pool": 2}]}, "db_pool 2 is below its 4 threads"),
    ({"redis": {}}, "unknown key"),
])
def test_bad_input_raises_filter_errors(data, message):
    with pytest.raises(AnsibleFilterError, match=message):
        connection_plan(data)


def test_none_is_an_empty_plan():
    assert connection_plan(None)["client_connections"] == 0
