"""Mastodon's processes on the stand-in really write their cache into the cache instance.

The web worker and the Sidekiq process resolve CACHE_REDIS_* from .env.production the way Mastodon's
RedisConfiguration does (through the dotenv gem and Addressable) and write one key with ruby-redis;
the key must be in the cache instance and never in the main Redis, which keeps Sidekiq's data.
"""

import os
import sys

import pytest

from common import MAIN_PORT, PORT, cli, info, run_ok

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from standin_report import http_report, oneoff_report, sidekiq_report  # noqa: E402


@pytest.fixture(scope="module")
def reports(host):
    return {"web": http_report(host, 3000), "sidekiq": sidekiq_report(host, "default")}


@pytest.mark.parametrize("kind", ["web", "sidekiq"])
def test_cache_writes_land_in_the_cache_instance(host, reports, kind):
    cache = reports[kind]["cache"]
    assert cache["ok"], cache.get("error")
    assert cache["tcp_port"] == PORT
    assert cache["run_id"] == info(host, "server")["run_id"]
    assert cli(host, f"EXISTS {cache['key']}").strip() == "1"


@pytest.mark.parametrize("kind", ["web", "sidekiq"])
def test_cache_writes_never_land_in_the_main_redis(host, reports, kind):
    key = reports[kind]["cache"]["key"]
    assert cli(host, f"EXISTS {key}", port=MAIN_PORT, password=None).strip() == "0"


def test_a_wrong_cache_password_makes_the_write_fail(host):
    """The check can fail: the same process with a wrong CACHE_REDIS_PASSWORD cannot write."""
    env = run_ok(host, "grep -E '^CACHE_REDIS_(URL|PASSWORD)=' /home/mastodon/live/.env.production | cut -d= -f1").split()
    override = ({"CACHE_REDIS_URL": f"redis://:wrong@127.0.0.1:{PORT}/0"} if "CACHE_REDIS_URL" in env
                else {"CACHE_REDIS_PASSWORD": "wrong"})
    report = oneoff_report(host, "web", override)
    assert report["cache"]["ok"] is False
