from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.redis_cache import FilterModule
from ansible_collections.fediops.mastodon.plugins.module_utils import redis_cache as rc

FILTERS = FilterModule().filters()


def test_every_role_filter_is_exported():
    # Exactly the filters the role uses: each one has its own plugins/filter/<name>.yml documentation.
    assert set(FILTERS) == {"redis_cache_env", "redis_cache_env_absent", "redis_cache_problems", "redis_cache_paths"}


@pytest.mark.parametrize("style, password, present", [
    ("url", "", {"CACHE_REDIS_URL": "redis://127.0.0.1:6380/0"}),
    ("url", "a b", {"CACHE_REDIS_URL": "redis://:a%20b@127.0.0.1:6380/0"}),
    ("parts", "pw", {"CACHE_REDIS_HOST": "127.0.0.1", "CACHE_REDIS_PORT": "6380", "CACHE_REDIS_DB": "0",
                     "CACHE_REDIS_PASSWORD": "pw"}),
])
def test_env_filter_treats_an_empty_password_as_none(style, password, present):
    values = FILTERS["redis_cache_env"](style, "127.0.0.1", 6380, password)
    assert dict((k, v) for k, v in values.items() if v is not None) == present


def test_errors_become_filter_errors_naming_the_filter():
    with pytest.raises(AnsibleFilterError, match="redis_cache_env: env style 'tcp': use url or parts"):
        FILTERS["redis_cache_env"]("tcp", "127.0.0.1", 6380)
    with pytest.raises(AnsibleFilterError, match="redis_cache_paths"):
        FILTERS["redis_cache_paths"]("memcached", "cache")
    with pytest.raises(rc.RedisCacheError, match="'lots' is not a memory size"):
        rc.parse_memory("lots")
    assert rc.parse_memory("256mb") == 268435456
    assert set(FILTERS["redis_cache_env_absent"]().values()) == {None}
