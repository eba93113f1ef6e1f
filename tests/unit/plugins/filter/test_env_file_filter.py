"""The env_secret_keys filter: the role side of env_file's one rule for secrets."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.env_file import FilterModule

env_secret_keys = FilterModule().filters()["env_secret_keys"]


def test_the_app_env_split():
    values = {"DB_HOST": "10.0.0.1", "DB_PASS": "x", "REPLICA_DATABASE_URL": "postgresql://10.0.0.2/m",
              "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic dXNlcjpwYXNz", "CUSTOM": "y"}
    assert env_secret_keys(values, ["CUSTOM"], urls=True) == [
        "CUSTOM", "DB_PASS", "OTEL_EXPORTER_OTLP_HEADERS", "REPLICA_DATABASE_URL"]


def test_a_unit_environment():
    assert env_secret_keys({"MALLOC_ARENA_MAX": 2, "UPSTREAM": "https://u:pa/ss@example.com"}) == ["UPSTREAM"]
    assert env_secret_keys(None) == []


def test_not_a_mapping_is_an_error():
    with pytest.raises(AnsibleFilterError):
        env_secret_keys(["DB_PASS"])
