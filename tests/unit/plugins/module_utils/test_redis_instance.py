from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import redis_instance as ri

# Mastodon's cache as the role redis_cache asks for it: its variables name every problem.
CACHE_NAMES = ri.variables("cache", "redis_cache")
GOOD = dict(
    purpose="cache", variables=CACHE_NAMES, server="redis", distribution="Debian", distribution_major="12", instance_name="cache", port=6380,
    main_port=6379, bind=["127.0.0.1", "-::1"], maxmemory="256mb", maxmemory_policy="allkeys-lru",
    env_style="url", env_host="127.0.0.1", password="", settings={}, mem_total_bytes=4 * 1024 ** 3,
)


def request(**changes):
    params = dict(GOOD)
    params.update(changes)
    return params


@pytest.mark.parametrize("text, expected", [
    ("0", 0),
    ("1", 1),
    ("100", 100),
    ("100b", 100),
    ("1k", 1000),
    ("1kb", 1024),
    ("1K", 1000),
    ("1KB", 1024),
    ("1m", 1000 ** 2),
    ("8mb", 8 * 1024 ** 2),
    ("100mb", 100 * 1024 ** 2),
    ("1g", 1000 ** 3),
    ("1gb", 1024 ** 3),
    ("2GB", 2 * 1024 ** 3),
    (268435456, 268435456),
])
def test_parse_memory_matches_redis_units(text, expected):
    assert ri.parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "mb", "-1", "-1mb", "1.5gb", "1 gb", "1tb", "1kib", "ten", "1e9", True, -5,
                                  "99999999999999999999999gb"])
def test_parse_memory_refuses_what_redis_refuses(text):
    with pytest.raises(ri.RedisInstanceError):
        ri.parse_memory(text)


@pytest.mark.parametrize("text", [" 256mb ", "256mb\n", "256mb\nenable-debug-command yes"])
def test_parse_memory_refuses_what_would_not_be_written_as_checked(text):
    """The role writes maxmemory as given: spaces or a line break around it would reach redis.conf."""
    with pytest.raises(ri.RedisInstanceError):
        ri.parse_memory(text)


@given(st.integers(min_value=0, max_value=2 ** 33), st.sampled_from(sorted(ri.MEMORY_UNITS)))
def test_parse_memory_is_digits_times_unit(number, unit):
    assert ri.parse_memory("%d%s" % (number, unit)) == number * ri.MEMORY_UNITS[unit]
    assert ri.parse_memory("%d%s" % (number, unit.upper())) == number * ri.MEMORY_UNITS[unit]


def test_a_sound_request_has_no_problems():
    assert ri.problems(GOOD) == []
    assert ri.problems(request(server="valkey", distribution_major="13")) == []
    assert ri.problems(request(bind=["10.0.0.5"], password="s3cret", env_host="10.0.0.5")) == []
    assert ri.problems(request(bind=["127.0.0.1", "-::1"], env_host="localhost")) == []


@pytest.mark.parametrize("changes, fragment", [
    (dict(maxmemory="lots"), "redis_cache_maxmemory: 'lots' is not a memory size"),
    (dict(maxmemory="1tb"), "unit 'tb'"),
    (dict(maxmemory="0"), "at least 1mb"),
    (dict(maxmemory="512kb"), "(524288 bytes)"),
    (dict(maxmemory="8gb"), "more than this host's memory (4.0 GiB)"),
    (dict(maxmemory_policy="lru"), "redis_cache_maxmemory_policy is 'lru'; use one of volatile-lru"),
    (dict(maxmemory_policy="noeviction"), "OOM"),
    (dict(port=6379), "redis_cache_port is 6379, the port of the main Redis (redis_cache_main_port 6379)"),
    (dict(port=70000), "redis_cache_port: must be a port number from 1024 to 65535, not 70000"),
    (dict(port=True), "redis_cache_port: must be a port number from 1024 to 65535, not a boolean"),
    (dict(port=80), "redis_cache_port: is port 80, below 1024"),
    (dict(server="valkey"), "Debian 13 (trixie)"),
    (dict(server="valkey", distribution="Ubuntu", distribution_major="24"), "this host runs Ubuntu 24"),
    (dict(server="memcached"), "use redis or valkey"),
    (dict(instance_name="ca che"), "redis_cache_instance_name is 'ca che'"),
    (dict(bind=[]), "redis_cache_bind: must be a list of at least one address"),
    (dict(bind=["0.0.0.0"]), "includes 0.0.0.0, which is not loopback"),
    (dict(env_style="uri"), "redis_cache_env_style is 'uri'"),
    (dict(env_host=""), "redis_cache_env_host is empty"),
    (dict(settings={"port": 1}), "redis_cache_settings sets port, which comes from redis_cache_port: set that instead "
     "and drop it here."),
    (dict(settings={"maxmemory-policy": "x"}), "sets maxmemory-policy, which comes from redis_cache_maxmemory_policy"),
    (dict(settings={"save": "60 1"}), "redis_cache_settings sets save"),
    (dict(settings={"Bad Name": 1}), "not a Redis setting name"),
    (dict(settings={"maxclients": None}), "no usable value"),
])
def test_problems_name_the_numbers_and_the_fix(changes, fragment):
    found = ri.problems(request(**changes))
    assert len(found) == 1, found
    assert fragment in found[0]


def test_problems_without_memory_facts_skip_the_host_check():
    assert ri.problems(request(maxmemory="64gb", mem_total_bytes=None)) == []


@pytest.mark.parametrize("entry, loopback", [
    ("127.0.0.1", True), ("-::1", True), ("::1", True), ("127.1.2.3", True), ("localhost", True),
    ("0.0.0.0", False), ("10.0.0.1", False), ("*", False), ("-::", False),
])
def test_loopback(entry, loopback):
    assert ri.is_loopback(entry) is loopback


def test_paths_follow_debians_instance_units():
    redis = ri.server_paths("redis", "cache")
    assert redis["unit"] == "redis-server@cache.service"
    assert redis["conf"] == "/etc/redis/redis-cache.conf"
    assert redis["pidfile"] == "/run/redis-cache/redis-server.pid"
    assert redis["dir"] == "/var/lib/redis/cache"
    assert redis["log"] == "/var/log/redis/redis-server-cache.log"
    valkey = ri.server_paths("valkey", "cache")
    assert valkey["unit"] == "valkey-server@cache.service"
    assert valkey["conf"] == "/etc/valkey/valkey-cache.conf"
    assert valkey["pidfile"] == "/run/valkey-cache/valkey-server.pid"
    assert valkey["cli"] == "valkey-cli"
    assert valkey["default_unit"] == "valkey-server.service"


def test_directives_disable_persistence_explicitly():
    pairs = ri.directives(request(maxmemory="8mb", settings={"maxclients": 500, "lazyfree-lazy-eviction": True}))
    as_dict = dict(pairs)
    assert as_dict["save"] == '""'
    assert as_dict["appendonly"] == "no"
    assert as_dict["maxmemory"] == "8mb"
    assert as_dict["maxmemory-policy"] == "allkeys-lru"
    assert as_dict["bind"] == "127.0.0.1 -::1"
    assert as_dict["lazyfree-lazy-eviction"] == "yes"
    assert as_dict["maxclients"] == "500"
    assert "requirepass" not in as_dict
    parsed = ri.parse_conf("\n".join("%s %s" % (k, v) for k, v in pairs))
    assert parsed["save"] == ""
    assert parsed["bind"] == "127.0.0.1 -::1"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_conf_quote_round_trips_through_the_config_parser(value):
    parsed = ri.parse_conf("requirepass %s" % ri.conf_quote(value))
    assert parsed.get("requirepass") == value


def test_parse_conf_reads_redis_rules():
    text = """# comment
port 6380
save 3600 1
save 300 100
maxmemory 8mb
maxmemory 16mb
requirepass "a \\"quoted\\" pass"
include /etc/redis/redis-cache.secret.conf
"""
    parsed = ri.parse_conf(text)
    assert parsed["save"] == "3600 1 300 100"
    assert parsed["maxmemory"] == "16mb"
    assert parsed["requirepass"] == 'a "quoted" pass'
    assert ri.parse_conf('save 60 1\nsave ""\n')["save"] == ""


def _files(**changes):
    params = request(**changes)
    main = ri.directives(params)
    text = "\n".join("%s %s" % tuple(pair) for pair in main) + "\ninclude /etc/redis/redis-cache.secret.conf\n"
    secret = ri.secret_directives(params["password"])
    return main, secret, ri.parse_conf(text + "\n".join("%s %s" % tuple(pair) for pair in secret))


def test_plan_is_empty_when_the_files_already_match():
    main, secret, current = _files(maxmemory="8mb", password="pw")
    assert ri.plan(current, main, secret) == {"differ": [], "live": [], "restart": []}


def test_plan_reads_the_rendered_files_with_headers_and_include():
    params = request(maxmemory="8mb", password="pw")
    main = ri.directives(params)
    secret = ri.secret_directives("pw")
    main_text = ("# Ansible managed\n# why\n" + "".join("%s %s\n" % tuple(p) for p in main)
                 + "include /etc/redis/redis-cache.secret.conf\n")
    secret_text = "# Ansible managed\n" + "".join("%s %s\n" % tuple(p) for p in secret)
    current = ri.parse_conf([main_text, secret_text])
    assert current["requirepass"] == "pw"
    assert ri.plan(current, main, secret) == {"differ": [], "live": [], "restart": []}


def test_plan_compares_sizes_in_bytes():
    main, secret, current = _files(maxmemory="8mb")
    current["maxmemory"] = "8388608"
    assert ri.plan(current, main, secret)["differ"] == []


@pytest.mark.parametrize("changes, live, restart", [
    (dict(maxmemory="16mb"), ["maxmemory"], []),
    (dict(maxmemory_policy="allkeys-lfu"), ["maxmemory-policy"], []),
    (dict(maxmemory="16mb", maxmemory_policy="allkeys-lfu"), ["maxmemory", "maxmemory-policy"], []),
    (dict(password="new"), ["requirepass"], []),
    (dict(settings={"maxclients": 100}), ["maxclients"], []),
    (dict(port=6390), [], ["port"]),
    (dict(bind=["127.0.0.1"]), [], ["bind"]),
    (dict(settings={"io-threads": 2}), [], ["io-threads"]),
    (dict(port=6390, maxmemory="16mb"), ["maxmemory"], ["port"]),
])
def test_plan_splits_live_from_restart(changes, live, restart):
    current = _files(maxmemory="8mb")[2]
    main, secret, _current = _files(**dict(dict(maxmemory="8mb"), **changes))
    result = ri.plan(current, main, secret)
    assert result["live"] == live
    assert result["restart"] == restart


def test_plan_on_a_first_run_restarts_nothing_that_runs():
    main, secret, _current = _files()
    result = ri.plan({}, main, secret)
    assert "port" in result["restart"]


def test_config_get_pairs_and_drift():
    running = ri.parse_config_get("save\n\nmaxmemory-policy\nallkeys-lru\nmaxmemory\n8388608\nappendonly\nno\n"
                                  "requirepass\nold\n")
    assert running == {"save": "", "maxmemory-policy": "allkeys-lru", "maxmemory": "8388608", "appendonly": "no",
                       "requirepass": "old"}
    main, secret, _current = _files(maxmemory="8mb", password="old")
    assert ri.drift(running, main, secret) == []
    main, secret, _current = _files(maxmemory="12mb", password="new")
    changes = ri.drift(running, main, secret)
    assert changes == [["maxmemory", "12mb"], ["requirepass", "new"]]
    assert ri.set_commands(changes) == 'CONFIG SET maxmemory "12mb"\nCONFIG SET requirepass "new"\n'
    # Ansible strips trailing newlines from stdout, taking an empty last value with them.
    assert ri.parse_config_get("maxmemory\n8388608\nsave") == {"maxmemory": "8388608", "save": ""}
    assert ri.parse_config_get("") == {}


def test_live_names_skip_restart_settings():
    main, secret, _current = _files()
    names = ri.live_names(main, secret)
    assert "maxmemory" in names and "requirepass" in names and "save" in names
    assert "port" not in names and "bind" not in names


def test_set_commands_keep_empty_values_as_arguments():
    assert ri.set_commands([["save", ""], ["requirepass", 'p"w']]) == (
        'CONFIG SET save ""\nCONFIG SET requirepass "p\\"w"\n')


@pytest.mark.parametrize("style, password, expected", [
    ("url", None, {"CACHE_REDIS_URL": "redis://127.0.0.1:6380/0"}),
    ("url", "p@ss/w%rd:x", {"CACHE_REDIS_URL": "redis://:p%40ss%2Fw%25rd%3Ax@127.0.0.1:6380/0"}),
    ("parts", None, {"CACHE_REDIS_HOST": "127.0.0.1", "CACHE_REDIS_PORT": "6380", "CACHE_REDIS_DB": "0"}),
    ("parts", "pw", {"CACHE_REDIS_HOST": "127.0.0.1", "CACHE_REDIS_PORT": "6380", "CACHE_REDIS_DB": "0",
                     "CACHE_REDIS_PASSWORD": "pw"}),
])
def test_env_values_write_every_part_and_drop_the_other_style(style, password, expected):
    values = ri.env_values(style, "127.0.0.1", 6380, password)
    assert set(values) == set(ri.ENV_ALL_KEYS)
    assert dict((k, v) for k, v in values.items() if v is not None) == expected


def test_env_values_bracket_ipv6():
    assert ri.env_values("url", "::1", 6380)["CACHE_REDIS_URL"] == "redis://[::1]:6380/0"
    assert ri.env_values("parts", "::1", 6380)["CACHE_REDIS_HOST"] == "[::1]"


@given(st.text(min_size=1, max_size=30).filter(lambda s: "\x00" not in s))
def test_url_password_decodes_back(password):
    url = ri.redis_url("127.0.0.1", 6380, password)
    parts = urlsplit(url)
    assert unquote(parts.password) == password
    assert parts.port == 6380 and parts.hostname == "127.0.0.1"


def test_env_absent_removes_every_key():
    assert ri.env_absent_values() == dict((k, None) for k in ri.ENV_ALL_KEYS)
    with pytest.raises(ri.RedisInstanceError):
        ri.env_values("uri", "127.0.0.1", 6380)


@pytest.mark.parametrize("bind, host", [
    (["127.0.0.1", "-::1"], "127.0.0.1"),
    (["-::1"], "::1"),
    (["0.0.0.0"], "127.0.0.1"),
    (["10.0.0.5"], "10.0.0.5"),
])
def test_admin_host(bind, host):
    assert ri.admin_host(bind) == host


class FakeServer:
    """redis-cli against a running server: CONFIG GET answers from `running`, stdin commands are kept."""

    def __init__(self, running, answer="OK"):
        self.running, self.answer, self.sent = running, answer, []

    def __call__(self, argv, data):
        if data is None:
            names = argv[argv.index("GET") + 1:]
            return 0, "".join("%s\n%s\n" % (n, self.running[n]) for n in names if n in self.running), ""
        self.sent = data.split("\n")
        return 0, "\n".join(self.answer for _line in self.sent) + "\n", ""


def test_sync_live_sets_what_differs_password_last_and_names_only():
    server = FakeServer({"maxmemory": "1000", "maxmemory-policy": "allkeys-lru", "requirepass": "old"})
    main = [["maxmemory", "2000"], ["maxmemory-policy", "allkeys-lru"]]
    assert ri.sync_live(server, ["redis-cli"], main, ri.secret_directives("new")) == ["maxmemory", "requirepass"]
    # requirepass goes last, so the earlier commands still authenticate with the old password.
    assert server.sent[0].startswith("CONFIG SET maxmemory") and server.sent[-1].startswith("CONFIG SET requirepass")


def test_sync_live_in_check_mode_only_reads():
    server = FakeServer({"maxmemory": "1000", "maxmemory-policy": "allkeys-lru", "requirepass": "pw"})
    main = [["maxmemory", "1000"], ["maxmemory-policy", "allkeys-lfu"]]
    assert ri.sync_live(server, ["redis-cli"], main, ri.secret_directives("pw"), check_mode=True) == ["maxmemory-policy"]
    assert server.sent == []


def test_sync_live_reports_the_memory_settings_as_the_server_has_them_after_the_run():
    main = [["maxmemory", "2mb"], ["maxmemory-policy", "allkeys-lru"]]
    for check_mode, maxmemory in ((False, "2097152"), (True, "1000")):
        server = FakeServer({"maxmemory": "1000", "maxmemory-policy": "allkeys-lru", "requirepass": "pw"})
        seen = {}
        ri.sync_live(server, ["redis-cli"], main, ri.secret_directives("pw"), check_mode=check_mode, seen=seen)
        # Never the password: only what a report shows.
        assert seen == {"maxmemory": maxmemory, "maxmemory-policy": "allkeys-lru"}


def test_sync_live_fails_on_a_refused_set():
    server = FakeServer({"maxmemory": "1000", "requirepass": ""}, answer="ERR no")
    with pytest.raises(ri.RedisInstanceError, match="CONFIG SET of maxmemory failed"):
        ri.sync_live(server, ["redis-cli"], [["maxmemory", "2000"]], ri.secret_directives(""))


def test_the_files_name_who_manages_them_in_one_line():
    main = ri.directives(GOOD)
    assert ri.render_conf(main, "redis", "cache", "cache", "fediops.mastodon.redis_cache").startswith(
        "# Ansible managed (fediops.mastodon.redis_cache): changes made here are overwritten.\n")
    assert ri.render_secret_conf(ri.secret_directives(""), "fediops.mastodon.sidekiq_redis").startswith(
        "# Ansible managed (fediops.mastodon.sidekiq_redis)")
    # A direct caller of the module is named as such, never as the cache.
    assert "redis_cache" not in ri.render_conf(main, "redis", "cache").splitlines()[0]
    for bad in ("x\nenable-debug-command yes", "", "a" * 101, None):
        with pytest.raises(ri.RedisInstanceError, match="managed_by"):
            ri.render_conf(main, "redis", "cache", "cache", bad)


def test_the_rendered_files_parse_back_to_what_was_asked():
    params = {"server": "redis", "instance_name": "cache", "bind": ["127.0.0.1", "::1"], "port": 6380,
              "maxmemory": "256mb", "maxmemory_policy": "allkeys-lru", "settings": {"maxmemory-samples": 7}}
    main, secret = ri.directives(params), ri.secret_directives('we"ird pw')
    conf = ri.render_conf(main, "redis", "cache")
    assert "include /etc/redis/redis-cache.secret.conf\n" in conf and "# The limit that makes this a cache" in conf
    assert ri.plan(ri.parse_conf([conf, ri.render_secret_conf(secret)]), main, secret)["differ"] == []
    assert ri.parse_conf(ri.render_secret_conf(secret))["requirepass"] == 'we"ird pw'


# Sidekiq's own Redis: the same instance model with the purpose `sidekiq`, as the role sidekiq_redis asks for it.
SIDEKIQ_NAMES = ri.variables("sidekiq", "sidekiq_redis")
SIDEKIQ_PARAMS = {
    "purpose": "sidekiq", "variables": SIDEKIQ_NAMES, "server": "redis", "distribution": "Debian",
    "distribution_major": "12", "instance_name": "sidekiq", "port": 6381, "main_port": 6379,
    "bind": ["127.0.0.1", "-::1"], "maxmemory": "0", "env_style": "url", "env_host": "127.0.0.1", "password": False,
    "settings": {},
}


def test_each_caller_has_a_variable_for_every_field_its_purpose_leaves_open():
    assert CACHE_NAMES == dict((field, "redis_cache_" + field) for field in ri.FIELDS)
    # Sidekiq's Redis never evicts: its role has no policy variable, so no message can name one.
    assert SIDEKIQ_NAMES == dict((field, "sidekiq_redis_" + field) for field in ri.FIELDS if field != "maxmemory_policy")
    for purpose, caller in (("queue", "sidekiq_redis"), ("cache", "Redis Cache"), ("cache", "redis_cache_"), ("cache", 1)):
        with pytest.raises(ri.RedisInstanceError):
            ri.variables(purpose, caller)


def test_sidekiq_purpose_takes_no_limit_and_noeviction():
    assert ri.problems(SIDEKIQ_PARAMS) == []
    assert ri.problems(dict(SIDEKIQ_PARAMS, maxmemory="2gb")) == []
    assert ri.problems(dict(SIDEKIQ_PARAMS, maxmemory_policy="noeviction")) == []


def test_sidekiq_purpose_refuses_eviction_naming_the_setting_it_has_no_variable_for():
    [msg] = ri.problems(dict(SIDEKIQ_PARAMS, maxmemory_policy="allkeys-lru"))
    assert msg.startswith("maxmemory-policy is allkeys-lru") and "queued jobs" in msg and "noeviction" in msg


@pytest.mark.parametrize("changes, fragment", [
    (dict(port=6379), "sidekiq_redis_port is 6379, the port of the main Redis (sidekiq_redis_main_port 6379)"),
    (dict(maxmemory="1x"), "sidekiq_redis_maxmemory: '1x' has the unit 'x'"),
    (dict(maxmemory="1000"), "sidekiq_redis_maxmemory is 1000 (1000 bytes); Sidekiq's Redis takes 0"),
    (dict(bind=["10.0.0.5"], env_host="10.0.0.5"), "and sidekiq_redis_password is empty"),
    (dict(settings={"maxmemory-policy": "allkeys-lru"}),
     "sidekiq_redis_settings sets maxmemory-policy, but this instance always runs with maxmemory-policy noeviction: "
     "drop it."),
    (dict(settings={"appendonly": "no"}), "sidekiq_redis_settings sets appendonly, which the instance model sets itself: "
     "drop it."),
    (dict(settings={"requirepass": "x"}), "use sidekiq_redis_password (requirepass)"),
    (dict(state="absent", point_mastodon=False),
     "sidekiq_redis_state absent needs sidekiq_redis_point_mastodon true"),
    (dict(state="absent", point_mastodon="false"), "sidekiq_redis_state absent needs sidekiq_redis_point_mastodon"),
])
def test_sidekiq_messages_name_its_own_variables(changes, fragment):
    [msg] = ri.problems(dict(SIDEKIQ_PARAMS, **changes))
    assert fragment in msg and "redis_cache" not in msg


def test_sidekiq_absent_with_its_jobs_moved_back_is_fine():
    assert ri.problems(dict(SIDEKIQ_PARAMS, state="absent", point_mastodon=True)) == []
    # A cache holds nothing to move: it may go without Mastodon being pointed away by the role.
    assert ri.problems(dict(GOOD, state="absent", point_mastodon=False)) == []


def test_cache_purpose_still_refuses_no_limit():
    found = ri.problems(dict(SIDEKIQ_PARAMS, purpose="cache", variables=CACHE_NAMES, maxmemory_policy="allkeys-lru"))
    assert any("redis_cache_maxmemory" in m for m in found)


def test_without_names_a_message_names_the_field_as_the_module_option():
    [msg] = ri.problems(dict(GOOD, variables=None, port=6379))
    assert msg.startswith("port is 6379, the port of the main Redis (main_port 6379)")


def test_unknown_purpose_is_refused():
    assert ri.problems(dict(SIDEKIQ_PARAMS, purpose="queue")) == ["The purpose is 'queue'; use cache or sidekiq."]


def test_sidekiq_directives_keep_snapshots_and_an_append_only_file():
    # No policy given: the purpose's own.
    pairs = dict((name, value) for name, value in ri.directives(dict(SIDEKIQ_PARAMS, maxmemory="0")))
    assert pairs["save"] == ri.PERSISTENT_SAVE and pairs["appendonly"] == "yes"
    assert pairs["maxmemory-policy"] == "noeviction" and pairs["maxmemory"] == "0"
    assert pairs["dir"] == "/var/lib/redis/sidekiq"
    cache = dict((name, value) for name, value in ri.directives(dict(SIDEKIQ_PARAMS, purpose="cache")))
    assert cache["save"] == '""' and cache["appendonly"] == "no"


def test_sidekiq_conf_says_what_it_holds():
    conf = ri.render_conf(ri.directives(SIDEKIQ_PARAMS), "redis", "sidekiq", "sidekiq")
    assert "# Sidekiq's Redis (redis instance \"sidekiq\"), started by redis-server@sidekiq.service." in conf
    assert "Never evict" in conf and "No AOF" not in conf
    # The file reads back as the settings it was rendered from.
    assert ri.parse_conf(conf)["appendonly"] == "yes" and ri.parse_conf(conf)["save"] == ri.PERSISTENT_SAVE


def test_sidekiq_env_values_use_the_sidekiq_prefix():
    values = ri.env_values("url", "127.0.0.1", 6381, "p@ss", purpose="sidekiq")
    assert values["SIDEKIQ_REDIS_URL"] == "redis://:p%40ss@127.0.0.1:6381/0"
    assert set(values) == set(ri.env_keys("sidekiq")) and not any(k.startswith("CACHE_") for k in values)
    parts = ri.env_values("parts", "127.0.0.1", 6381, None, purpose="sidekiq")
    assert parts["SIDEKIQ_REDIS_HOST"] == "127.0.0.1" and parts["SIDEKIQ_REDIS_PORT"] == "6381"
    assert parts["SIDEKIQ_REDIS_URL"] is None and parts["SIDEKIQ_REDIS_PASSWORD"] is None
    assert ri.env_absent_values("sidekiq") == dict((k, None) for k in ri.env_keys("sidekiq"))
    assert set(ri.env_keys("cache")) == set(ri.ENV_ALL_KEYS)
