from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.redis_instance import FilterModule
from ansible_collections.fediops.mastodon.plugins.module_utils import redis_instance as ri

FILTERS = FilterModule().filters()


def test_every_model_filter_is_exported():
    # Exactly the filters the model's role uses: each one has its own plugins/filter/<name>.yml documentation.
    assert set(FILTERS) == {"redis_instance_env", "redis_instance_env_absent", "redis_instance_problems",
                            "redis_instance_paths", "redis_instance_variables"}


@pytest.mark.parametrize("style, password, present", [
    ("url", "", {"CACHE_REDIS_URL": "redis://127.0.0.1:6380/0"}),
    ("url", "a b", {"CACHE_REDIS_URL": "redis://:a%20b@127.0.0.1:6380/0"}),
    ("parts", "pw", {"CACHE_REDIS_HOST": "127.0.0.1", "CACHE_REDIS_PORT": "6380", "CACHE_REDIS_DB": "0",
                     "CACHE_REDIS_PASSWORD": "pw"}),
])
def test_env_filter_treats_an_empty_password_as_none(style, password, present):
    values = FILTERS["redis_instance_env"](style, "127.0.0.1", 6380, password)
    assert dict((k, v) for k, v in values.items() if v is not None) == present


def test_errors_become_filter_errors_naming_the_filter():
    with pytest.raises(AnsibleFilterError, match="redis_instance_env: env style 'tcp': use url or parts"):
        FILTERS["redis_instance_env"]("tcp", "127.0.0.1", 6380)
    with pytest.raises(AnsibleFilterError, match="redis_instance_paths"):
        FILTERS["redis_instance_paths"]("memcached", "cache")
    with pytest.raises(AnsibleFilterError, match="redis_instance_variables: caller"):
        FILTERS["redis_instance_variables"]("cache", "Redis Cache")
    with pytest.raises(ri.RedisInstanceError, match="'lots' is not a memory size"):
        ri.parse_memory("lots")
    assert ri.parse_memory("256mb") == 268435456
    assert set(FILTERS["redis_instance_env_absent"]().values()) == {None}


# Run in a fresh interpreter: Ansible's collection loader reads meta/runtime.yml only for a collection it imported
# itself, and this test process imported the collection through sys.path.
ROUTING = """
import json
from ansible.plugins.loader import filter_loader, init_plugin_loader, module_loader
init_plugin_loader()
out = {}
for old in ("redis_cache_env", "redis_cache_env_absent", "redis_cache_problems", "redis_cache_paths"):
    out[old] = filter_loader.get("fediops.mastodon." + old).ansible_name
out["redis_cache_env called"] = filter_loader.get("fediops.mastodon.redis_cache_env").j2_function(
    "url", "127.0.0.1", 6380, "pw")["CACHE_REDIS_URL"]
found = module_loader.find_plugin_with_context("fediops.mastodon.redis_cache_config")
out["redis_cache_config"] = [found.resolved_fqcn, found.plugin_resolved_path]
print(json.dumps(out))
"""


def test_the_names_from_before_the_model_was_neutral_still_work():
    """meta/runtime.yml routes them: what Ansible loads for each old name is the new plugin."""
    done = subprocess.run([sys.executable, "-c", ROUTING], capture_output=True, text=True, check=True)
    routed = json.loads(done.stdout.strip().splitlines()[-1])
    assert routed.pop("redis_cache_config")[0] == "fediops.mastodon.redis_instance_config"
    assert routed.pop("redis_cache_env called") == "redis://:pw@127.0.0.1:6380/0"
    assert routed == {"redis_cache_env": "fediops.mastodon.redis_instance_env",
                      "redis_cache_env_absent": "fediops.mastodon.redis_instance_env_absent",
                      "redis_cache_problems": "fediops.mastodon.redis_instance_problems",
                      "redis_cache_paths": "fediops.mastodon.redis_instance_paths"}
