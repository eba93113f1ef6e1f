# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An extra Redis (or Valkey) instance beside Mastodon's main Redis, as pure functions.

Two callers use the model as equals: the role redis_cache (Mastodon's cache) and the role sidekiq_redis
(Sidekiq's own Redis). Each gives the instance's fields (FIELDS) from its own variables, the purpose (PURPOSES),
and its variable names (variables()), which every message uses: a refusal names the variable the operator
set. The purpose decides persistence, the eviction policy, and the environment keys Mastodon reads
(CACHE_REDIS_* or SIDEKIQ_REDIS_*); the rest (the unit template, the files, the checks, the live changes) is
one code path.

Everything here takes plain values and returns plain values: the filters, the modules
(redis_instance_config, redis_cli) and the unit tests call the same code. Nothing talks to Redis by
itself; sync_live() runs redis-cli through the caller's `run` function.
"""

from __future__ import annotations

import ipaddress
import re

from urllib.parse import quote

from ansible_collections.fediops.mastodon.plugins.module_utils import inputs, mastodon_source

# Redis's memtoull() (util.c): digits, then an optional unit, case-insensitive.
# k/m/g are powers of 1000, kb/mb/gb powers of 1024, b or nothing means bytes.
MEMORY_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000 ** 2,
    "mb": 1024 ** 2,
    "g": 1000 ** 3,
    "gb": 1024 ** 3,
}
MEMORY_RE = re.compile(r"(?P<digits>[0-9]+)(?P<unit>[A-Za-z]*)")
# Redis stores memory settings in an unsigned long long.
MAX_MEMORY_VALUE = 2 ** 64 - 1
# Below this Redis itself warns that it may not work; a limit that small is a typo.
MIN_MAXMEMORY = 1024 ** 2

EVICTION_POLICIES = (
    "volatile-lru",
    "allkeys-lru",
    "volatile-lfu",
    "allkeys-lfu",
    "volatile-random",
    "allkeys-random",
    "volatile-ttl",
    "noeviction",
)

# Settings that CONFIG SET changes in the running server (Redis 7.0 and later, Valkey 8).
# Anything else restarts the instance. bind and port can be set live since 7.0 too, but a
# new listener is rare and a restart makes the process, the file and systemd agree for certain.
LIVE_SETTINGS = frozenset((
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "maxmemory-clients",
    "maxclients",
    "timeout",
    "tcp-keepalive",
    "loglevel",
    "requirepass",
    "save",
    "appendonly",
    "hz",
    "dynamic-hz",
    "active-expire-effort",
    "activedefrag",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "latency-monitor-threshold",
    "notify-keyspace-events",
    "client-query-buffer-limit",
    "proto-max-bulk-len",
))

# Values Redis reports in bytes through CONFIG GET whatever unit the file used.
MEMORY_SETTINGS = frozenset(("maxmemory", "maxmemory-clients", "client-query-buffer-limit", "proto-max-bulk-len"))
# Values Redis reports in lower case.
ENUM_SETTINGS = frozenset(("maxmemory-policy", "loglevel", "appendfsync"))
SECRET_SETTINGS = frozenset(("requirepass", "masterauth"))

# Owned by dedicated role variables (or fixed, like save and appendonly): refused in the
# free-form settings so that one value cannot be set in two places.
MANAGED_SETTINGS = frozenset((
    "bind", "port", "protected-mode", "daemonize", "supervised", "pidfile", "logfile", "dir",
    "dbfilename", "save", "appendonly", "maxmemory", "maxmemory-policy", "requirepass", "include",
    "unixsocket", "user", "aclfile", "rename-command",
))
# The managed settings that a field of the instance sets (the rest are fixed: dir, save, supervised, ...).
SETTING_FIELDS = {"bind": "bind", "port": "port", "maxmemory": "maxmemory", "maxmemory-policy": "maxmemory_policy"}
# Lines of the file that are structure, not settings to compare.
STRUCTURE_SETTINGS = frozenset(("include",))
SETTING_NAME_RE = re.compile(r"[a-z][a-z0-9-]*")
# The instance name is in the unit's name and the files' paths (inputs' instance_name kind).
INSTANCE_NAME_RE = inputs.INSTANCE_NAME_RE

SERVERS = {
    # server: (package, cli, unit template prefix, config dir, data dir root, log dir, system user)
    "redis": {
        "package": "redis-server",
        "cli": "redis-cli",
        "unit_prefix": "redis-server",
        "conf_dir": "/etc/redis",
        "conf_prefix": "redis",
        "data_root": "/var/lib/redis",
        "log_dir": "/var/log/redis",
        "user": "redis",
        "run_prefix": "redis",
    },
    "valkey": {
        "package": "valkey-server",
        "cli": "valkey-cli",
        "unit_prefix": "valkey-server",
        "conf_dir": "/etc/valkey",
        "conf_prefix": "valkey",
        "data_root": "/var/lib/valkey",
        "log_dir": "/var/log/valkey",
        "user": "valkey",
        "run_prefix": "valkey",
    },
}
# Debian ships valkey-server from Debian 13 (trixie) on.
VALKEY_MIN_DEBIAN = 13

ENV_PART_KEYS = ("CACHE_REDIS_HOST", "CACHE_REDIS_PORT", "CACHE_REDIS_PASSWORD", "CACHE_REDIS_DB")
ENV_ALL_KEYS = ("CACHE_REDIS_URL",) + ENV_PART_KEYS + ("CACHE_REDIS_USER",)

# The fields of one instance, as a caller gives them: a role's variables are its prefix and the field
# (redis_cache_port, sidekiq_redis_port). A direct caller of the problems filter names them as they are here.
FIELDS = ("state", "server", "instance_name", "port", "bind", "maxmemory", "maxmemory_policy", "password",
          "env_style", "env_host", "main_port", "settings", "point_mastodon", "mastodon_env_file", "mastodon_user")

# What each purpose changes. `cache`: everything may be lost, so no saving, and a limit at which Redis
# evicts. `sidekiq`: Sidekiq's queues, schedules and retries, which must survive a restart and must never
# be evicted (Mastodon's docs: noeviction), so RDB snapshots with Redis's default rules and an AOF written
# every second, and maxmemory 0 (no limit) allowed. `fixed` holds the fields a purpose sets itself, which its
# caller has no variable for; `env_prefix` is the prefix of the keys Mastodon reads
# (lib/mastodon/redis_configuration.rb).
PURPOSES = {
    "cache": {
        "env_prefix": "CACHE_",
        "title": "Mastodon's cache",
        "persistent": False,
        "default_policy": "allkeys-lru",
        "fixed": {},
    },
    "sidekiq": {
        "env_prefix": "SIDEKIQ_",
        "title": "Sidekiq's Redis",
        "persistent": True,
        "default_policy": "noeviction",
        "fixed": {"maxmemory_policy": "noeviction"},
    },
}
# Redis 7's own default save rules: after 3600 s with 1 change, 300 s with 100, 60 s with 10000.
PERSISTENT_SAVE = "3600 1 300 100 60 10000"


def purpose_of(params):
    """The purpose of a request (`cache` when none is given); raises RedisInstanceError for an unknown one."""
    purpose = (params or {}).get("purpose") or "cache"
    if purpose not in PURPOSES:
        raise RedisInstanceError("purpose %r: use %s" % (purpose, " or ".join(sorted(PURPOSES))))
    return purpose


def variables(purpose, caller):
    """{field: the caller's variable} for each field a caller of `purpose` sets: `caller` is its variable prefix
    without the final `_` (its role's name, such as sidekiq_redis). Fields the purpose fixes have none."""
    if purpose not in PURPOSES:
        raise RedisInstanceError("purpose %r: use %s" % (purpose, " or ".join(sorted(PURPOSES))))
    if not isinstance(caller, str) or not re.fullmatch(r"[a-z][a-z0-9_]*[a-z0-9]", caller):
        raise RedisInstanceError("caller %r: give the prefix of the caller's variables, such as redis_cache" % (caller,))
    return dict((field, "%s_%s" % (caller, field)) for field in FIELDS if field not in PURPOSES[purpose]["fixed"])


def maxmemory_policy(params):
    """The eviction policy asked for, or the purpose's own when none is."""
    return params.get("maxmemory_policy") or PURPOSES[purpose_of(params)]["default_policy"]


def env_keys(purpose="cache"):
    """Every environment key of one purpose: the URL, the parts and the user."""
    prefix = PURPOSES[purpose]["env_prefix"] + "REDIS_"
    return tuple(prefix + part for part in ("URL", "HOST", "PORT", "PASSWORD", "DB", "USER"))


class RedisInstanceError(ValueError):
    """A value Redis (or this model) would refuse."""


# The name before the model was neutral; code that catches it keeps working.
RedisCacheError = RedisInstanceError


def parse_memory(value):
    """Return the number of bytes Redis reads from a memory setting such as `100mb` or `1gb`."""
    if isinstance(value, bool):
        raise RedisInstanceError("%r is not a memory size" % (value,))
    if isinstance(value, int):
        if value < 0:
            raise RedisInstanceError("%d is negative; memory sizes are 0 or more bytes" % value)
        return value
    # Not stripped: the role writes the value it checked into the config file as it is.
    text = str(value)
    match = MEMORY_RE.fullmatch(text)
    if not match:
        raise RedisInstanceError(
            "%r is not a memory size Redis understands: use bytes or a number with one of the units "
            "b, k, kb, m, mb, g, gb (for example 256mb)" % (value,))
    unit = match.group("unit").lower()
    if unit not in MEMORY_UNITS:
        raise RedisInstanceError(
            "%r has the unit %r; Redis knows b, k (1000), kb (1024), m, mb, g and gb" % (value, match.group("unit")))
    result = int(match.group("digits")) * MEMORY_UNITS[unit]
    if result > MAX_MEMORY_VALUE:
        raise RedisInstanceError("%r is more than Redis can store (%d bytes)" % (value, MAX_MEMORY_VALUE))
    return result


def human_bytes(count):
    """Short binary size for messages: 8388608 -> '8.0 MiB'."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024
    return "%d B" % count  # pragma: no cover - loop always returns


def is_live(setting):
    """True when CONFIG SET changes `setting` in the running server."""
    return setting.lower() in LIVE_SETTINGS


def _reaches(host, bind):
    """Whether a client connecting to `host` on this host reaches an instance bound to `bind`."""
    addresses = {_bind_address(str(b)).strip() for b in bind}
    if host in addresses or addresses & {"0.0.0.0", "*", "::", "::*"}:
        return True
    return host == "localhost" and bool(addresses & {"127.0.0.1", "::1"})


def _bind_address(entry):
    # A leading "-" makes Redis skip an address it cannot bind (::1 without IPv6).
    return entry[1:] if entry.startswith("-") else entry


def is_loopback(entry):
    address = _bind_address(str(entry)).strip()
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def server_paths(server, instance):
    """Unit, config files, data dir, log and pidfile of one instance."""
    info = SERVERS[server]
    name = "%s-%s" % (info["conf_prefix"], instance)
    return {
        "package": info["package"],
        "cli": info["cli"],
        "user": info["user"],
        "default_unit": "%s.service" % info["unit_prefix"],
        "unit_template": "%s@.service" % info["unit_prefix"],
        "unit": "%s@%s.service" % (info["unit_prefix"], instance),
        "conf": "%s/%s.conf" % (info["conf_dir"], name),
        "secret_conf": "%s/%s.secret.conf" % (info["conf_dir"], name),
        # Debian's units allow writes only below these folders (ProtectSystem=strict).
        "dir": "%s/%s" % (info["data_root"], instance),
        "log": "%s/%s-server-%s.log" % (info["log_dir"], info["conf_prefix"], instance),
        # The unit's PIDFile= and RuntimeDirectory=.
        "pidfile": "/run/%s-%s/%s-server.pid" % (info["run_prefix"], instance, info["conf_prefix"]),
    }


def problems(params):
    """Sentences naming what is wrong and what to change; empty when the request is sound.

    `params` keys: purpose, server, distribution, distribution_major, instance_name, port, main_port, bind,
    maxmemory, maxmemory_policy (optional: the purpose's own), env_style, env_host, password (whether one is
    set), settings, mem_total_bytes (optional), state and point_mastodon (optional), and `variables`: the
    caller's name of each field ({field: variable}, as variables() gives them), which the sentences use. A
    field without a name there is named as it is in FIELDS.
    """
    names = dict((field, field) for field in FIELDS)
    names.update((params or {}).get("variables") or {})
    try:
        purpose = purpose_of(params)
    except RedisInstanceError:
        return ["The purpose is %r; use cache or sidekiq." % (params.get("purpose"),)]
    found = []
    server = params.get("server")
    if server not in SERVERS:
        found.append("%s is %r; use redis or valkey." % (names["server"], server))
    elif server == "valkey":
        distribution = str(params.get("distribution") or "")
        try:
            major = int(str(params.get("distribution_major")))
        except (TypeError, ValueError):
            major = 0
        if distribution != "Debian" or major < VALKEY_MIN_DEBIAN:
            found.append(
                "%s is valkey, but this host runs %s %s; Debian ships valkey-server from Debian %d (trixie) on. "
                "Use %s: redis here."
                % (names["server"], distribution or "an unknown system", params.get("distribution_major"),
                   VALKEY_MIN_DEBIAN, names["server"]))

    name = str(params.get("instance_name") or "")
    if not INSTANCE_NAME_RE.fullmatch(name):
        found.append(
            "%s is %r; use 1 to 32 letters, digits, - or _ (it names the unit and the files)."
            % (names["instance_name"], name))

    # Debian's units run the server as its own user without CAP_NET_BIND_SERVICE (Debian 12's redis-server@:
    # User=redis, an empty CapabilityBoundingSet=): a port below 1024 cannot be bound. A boolean is never a
    # port (YAML's true would be port 1).
    found.extend(inputs.problems([[names["port"], "unprivileged_port", params.get("port")],
                                  [names["main_port"], "port", params.get("main_port")]]))
    port = inputs.whole(params.get("port"))
    main_port = inputs.whole(params.get("main_port"))
    if port is not None and port == main_port:
        found.append(
            "%s is %d, the port of the main Redis (%s %d); this instance needs its own port, for example %d."
            % (names["port"], port, names["main_port"], main_port, 6380 if purpose == "cache" else 6381))

    bind = params.get("bind") or []
    bind_problems = inputs.problems([[names["bind"], "redis_bind_list", bind]])
    found.extend(bind_problems)
    # Only entries that are addresses go further: the rest are refused above, and quoted nowhere else.
    bind = [] if bind_problems else bind
    public = [b for b in bind if not is_loopback(b)]
    if public and not params.get("password"):
        found.append(
            "%s includes %s, which is not loopback, and %s is empty; set a password or bind to 127.0.0.1 only."
            % (names["bind"], ", ".join(public), names["password"]))

    try:
        maxmemory = parse_memory(params.get("maxmemory"))
    except RedisInstanceError as exc:
        found.append("%s: %s." % (names["maxmemory"], exc))
    else:
        if purpose == "sidekiq" and maxmemory == 0:
            pass
        elif purpose == "sidekiq" and maxmemory < MIN_MAXMEMORY:
            found.append(
                "%s is %s (%d bytes); Sidekiq's Redis takes 0 (no limit: a full host then fails writes rather than "
                "losing jobs) or a limit of at least 1mb." % (names["maxmemory"], params.get("maxmemory"), maxmemory))
        elif maxmemory < MIN_MAXMEMORY:
            found.append(
                "%s is %s (%d bytes); a cache needs a limit of at least 1mb, and 0 would mean no limit at all. Set "
                "it to the memory the cache may use, for example 256mb."
                % (names["maxmemory"], params.get("maxmemory"), maxmemory))
        total = params.get("mem_total_bytes")
        if total and maxmemory > total:
            found.append(
                "%s is %s (%s), more than this host's memory (%s); lower it."
                % (names["maxmemory"], params.get("maxmemory"), human_bytes(maxmemory), human_bytes(total)))

    found.extend(_policy_problems(purpose, maxmemory_policy(params), names))

    style = params.get("env_style")
    if style not in ("url", "parts"):
        found.append("%s is %r; use url or parts." % (names["env_style"], style))
    env_host = params.get("env_host")
    host_problems = [] if env_host in ("localhost",) else inputs.problems([[names["env_host"], "ip", env_host]])
    if env_host is None or env_host == "":
        found.append("%s is empty; set the address Mastodon connects to, for example 127.0.0.1." % names["env_host"])
    elif host_problems:
        # It ends up in CACHE_REDIS_URL (or _HOST): an address, without a zone id, or localhost.
        found.extend(host_problems)
    elif bind and not _reaches(env_host, bind):
        found.append(
            "%s is %s, but the instance listens only on %s (%s): Mastodon could not connect. Point it at one of "
            "those addresses." % (names["env_host"], env_host, ", ".join(_bind_address(str(b)) for b in bind),
                                  names["bind"]))

    found.extend(_settings_problems(params.get("settings") or {}, names, PURPOSES[purpose]["fixed"]))

    # Sidekiq's Redis holds jobs: it goes only after Mastodon points away from it and its jobs moved back,
    # which is the caller's own work (point_mastodon).
    if (PURPOSES[purpose]["persistent"] and params.get("state") == "absent"
            and str(params.get("point_mastodon")).strip().lower() in ("false", "no", "off", "0")):
        found.append(
            "%s absent needs %s true: Mastodon must be pointed back at the main Redis and the jobs moved there "
            "before the instance and its data are deleted." % (names["state"], names["point_mastodon"]))
    return found


def _policy_problems(purpose, policy, names):
    # A purpose that fixes the policy gives its caller no variable for it: the message names the setting.
    name = names.get("maxmemory_policy") if "maxmemory_policy" not in PURPOSES[purpose]["fixed"] else "maxmemory-policy"
    if policy not in EVICTION_POLICIES:
        return ["%s is %r; use one of %s (allkeys-lru suits a cache)." % (name, policy, ", ".join(EVICTION_POLICIES))]
    if purpose == "sidekiq" and policy != "noeviction":
        return ["%s is %s: at its memory limit Redis would evict keys, and with them queued jobs, schedules and "
                "retries. Sidekiq's Redis needs noeviction." % (name, policy)]
    if purpose == "cache" and policy == "noeviction":
        return ["%s is noeviction: a full cache would answer every write with an OOM error instead of dropping old "
                "entries. Use allkeys-lru or allkeys-lfu." % name]
    return []


def _settings_problems(settings, names, fixed):
    found = []
    for key, value in sorted(settings.items()):
        lowered = str(key).lower()
        if not SETTING_NAME_RE.fullmatch(lowered):
            found.append("%s has %r, which is not a Redis setting name." % (names["settings"], key))
        elif lowered in SECRET_SETTINGS:
            found.append(
                "%s sets %s, a password: the settings file is shown in diffs and kept readable; use %s "
                "(requirepass), which goes to the root-only secret file." % (names["settings"], lowered, names["password"]))
        elif lowered in MANAGED_SETTINGS:
            field = SETTING_FIELDS.get(lowered)
            if field in fixed:
                why = "but this instance always runs with %s %s: drop it" % (lowered, fixed[field])
            elif field:
                why = "which comes from %s: set that instead and drop it here" % names[field]
            else:
                why = "which the instance model sets itself: drop it"
            found.append("%s sets %s, %s." % (names["settings"], lowered, why))
        elif value is None or "\n" in str(value):
            found.append("%s.%s has no usable value (%r)." % (names["settings"], lowered, value))
    return found


def conf_quote(value):
    """One value as Redis's config parser (sdssplitargs) reads it back unchanged."""
    text = "yes" if value is True else "no" if value is False else str(value)
    # fullmatch: "$" would also match before a final line break, and leave it unquoted.
    if text and re.fullmatch(r"[A-Za-z0-9_./:@%+,=-]+", text):
        return text
    escaped = []
    for ch in text:
        if ch in ('"', "\\"):
            escaped.append("\\" + ch)
        elif ch == "\n":
            escaped.append("\\n")
        elif ch == "\r":
            escaped.append("\\r")
        elif ch == "\t":
            escaped.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            escaped.append("\\x%02x" % ord(ch))
        else:
            escaped.append(ch)
    return '"%s"' % "".join(escaped)


def directives(params):
    """The instance's settings in config file order: a list of [name, rendered value] pairs.

    The password is not among them: it lives in its own file (see secret_directives) so that the
    main file's diff can be shown.
    """
    paths = server_paths(params["server"], params["instance_name"])
    persistent = PURPOSES[purpose_of(params)]["persistent"]
    out = [
        ["bind", " ".join(str(b) for b in params["bind"])],
        ["protected-mode", "yes"],
        ["port", str(params["port"])],
        ["daemonize", "no"],
        ["supervised", "systemd"],
        ["pidfile", paths["pidfile"]],
        ["logfile", paths["log"]],
        # A cache: an explicit empty save, because with no save line at all Redis falls back to its default rules.
        ["save", PERSISTENT_SAVE if persistent else '""'],
        ["dir", paths["dir"]],
        ["maxmemory", str(params["maxmemory"])],
        ["maxmemory-policy", maxmemory_policy(params)],
        ["appendonly", "yes" if persistent else "no"],
    ]
    for key, value in sorted((params.get("settings") or {}).items()):
        out.append([str(key).lower(), conf_quote(value)])
    return out


def secret_directives(password):
    """The password file's settings; an empty password means no AUTH required."""
    return [["requirepass", conf_quote(password or "")]]


# C's isspace() in the "C" locale, which Redis's parser uses; Python's str.isspace() knows more.
C_SPACE = " \t\n\v\f\r"


def _split_args(text):
    """Tokens of one config line, with Redis's quoting rules (sdssplitargs)."""
    args, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in C_SPACE:
            i += 1
        if i >= n:
            return args
        token, quote_char = [], None
        if text[i] in "\"'":
            quote_char = text[i]
            i += 1
        while i < n:
            ch = text[i]
            if quote_char == '"':
                if ch == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    if nxt == "x" and i + 3 < n and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2:i + 4]):
                        token.append(chr(int(text[i + 2:i + 4], 16)))
                        i += 4
                        continue
                    token.append({"n": "\n", "r": "\r", "t": "\t", "b": "\b", "a": "\a"}.get(nxt, nxt))
                    i += 2
                    continue
                if ch == '"':
                    i += 1
                    quote_char = None
                    break
            elif quote_char == "'":
                if ch == "\\" and i + 1 < n and text[i + 1] == "'":
                    token.append("'")
                    i += 2
                    continue
                if ch == "'":
                    i += 1
                    quote_char = None
                    break
            elif ch in C_SPACE:
                break
            token.append(ch)
            i += 1
        if quote_char is not None:
            raise RedisInstanceError("unbalanced quotes in %r" % text)
        args.append("".join(token))


def parse_conf(text):
    """Settings of a redis.conf text: {name: value}, the last line of a name winning.

    Values with several arguments are joined with one space; `save` lines accumulate the way
    Redis does, and `save ""` resets them. A list of texts reads as one file (main, then included).
    """
    if isinstance(text, (list, tuple)):
        text = "\n".join(text)
    settings = {}
    # Redis splits the file on "\n" only, not on the other line breaks Python knows.
    for line in (text or "").split("\n"):
        stripped = line.strip(C_SPACE)
        if not stripped or stripped.startswith("#"):
            continue
        try:
            args = _split_args(stripped)
        except RedisInstanceError:
            continue
        if not args:
            continue
        name = args[0].lower()
        value = " ".join(args[1:])
        if name == "save":
            if value == "":
                settings["save"] = ""
            else:
                settings["save"] = (settings.get("save", "") + " " + value).strip()
            continue
        settings[name] = value
    return settings


def normalize(setting, value):
    """The form CONFIG GET reports for `value`, so that file, request and server compare equal."""
    setting = setting.lower()
    text = "" if value is None else str(value).strip()
    if setting in MEMORY_SETTINGS:
        try:
            return str(parse_memory(text))
        except RedisInstanceError:
            return text
    if setting == "save" or setting == "bind":
        return " ".join(text.split())
    if setting in ENUM_SETTINGS or text.lower() in ("yes", "no"):
        return text.lower()
    return text


def _desired_map(main_pairs, secret_pairs):
    wanted = {}
    for name, rendered in list(main_pairs) + list(secret_pairs):
        # Run the rendered text through the same parser as the file, so quoting matches.
        wanted.update(parse_conf("%s %s" % (name, rendered)) or {name: ""})
    return wanted


def plan(current, main_pairs, secret_pairs):
    """Compare the settings in the files now (`current`, from parse_conf) with the wanted ones.

    Returns {differ: [names], live: [names], restart: [names]}: `restart` lists the changed
    settings that CONFIG SET cannot apply; when it is empty a restart is never needed.
    """
    wanted = _desired_map(main_pairs, secret_pairs)
    changed = []
    for name in sorted((set(wanted) | set(current or {})) - STRUCTURE_SETTINGS):
        before = (current or {}).get(name)
        after = wanted.get(name)
        if before is None and name == "requirepass" and after == "":
            continue
        if before is None or after is None or normalize(name, before) != normalize(name, after):
            changed.append(name)
    return {
        "differ": changed,
        "live": [n for n in changed if is_live(n)],
        "restart": [n for n in changed if not is_live(n)],
    }


def live_names(main_pairs, secret_pairs):
    """Names of the wanted settings that can be compared with (and set in) the running server."""
    return sorted(n for n in _desired_map(main_pairs, secret_pairs) if is_live(n))


def parse_config_get(text):
    """{name: value} from redis-cli's raw output of CONFIG GET (name and value on alternate lines)."""
    lines = (text or "").split("\n")
    if lines and lines[-1] == "":
        lines = lines[:-1]
    if len(lines) % 2:
        # Ansible strips trailing newlines from stdout, and with them an empty last value
        # (save ""). Names are never empty, so only the last value can be missing.
        lines.append("")
    return dict((lines[i].lower(), lines[i + 1]) for i in range(0, len(lines), 2))


def drift(running, main_pairs, secret_pairs):
    """Live settings whose running value differs from the wanted one: [[name, value], ...].

    `requirepass` comes last, so every earlier command still authenticates with the old password.
    """
    wanted = _desired_map(main_pairs, secret_pairs)
    out = []
    for name in sorted(n for n in wanted if is_live(n)):
        if name not in running:
            out.append([name, wanted[name]])
        elif normalize(name, running[name]) != normalize(name, wanted[name]):
            out.append([name, wanted[name]])
    out.sort(key=lambda pair: pair[0] == "requirepass")
    return out


def set_commands(changes):
    """redis-cli stdin text with one CONFIG SET per change (values quoted, never on argv)."""
    return "".join("CONFIG SET %s %s\n" % (name, _cli_quote(value)) for name, value in changes)


def _cli_quote(value):
    # redis-cli splits stdin lines with sdssplitargs too; always quote so "" stays an argument.
    text = str(value)
    quoted = conf_quote(text)
    return quoted if quoted.startswith('"') else '"%s"' % text


def redis_url(host, port, password=None, db=0):
    """redis://[:password@]host:port/db with the password percent-encoded (Mastodon decodes it)."""
    auth = ":%s@" % quote(str(password), safe="") if password else ""
    return "redis://%s%s:%d/%d" % (auth, mastodon_source.url_host(host), int(port), int(db))


def env_values(style, host, port, password=None, db=0, purpose="cache"):
    """Keys to write into .env.production ({KEY: value}, None removes the key).

    Mastodon (lib/mastodon/redis_configuration.rb) uses CACHE_REDIS_URL when it is set. Otherwise
    it builds a URL from CACHE_REDIS_HOST, _PORT, _DB and _PASSWORD, none of which falls back to
    REDIS_*: without a port the URL has none, and without a host the whole cache config falls back
    to the main Redis. So every part is written, and the keys of the other style are removed.
    """
    if purpose not in PURPOSES:
        raise RedisInstanceError("purpose %r: use cache or sidekiq" % (purpose,))
    key = PURPOSES[purpose]["env_prefix"] + "REDIS_"
    values = dict((name, None) for name in env_keys(purpose))
    if style == "url":
        values[key + "URL"] = redis_url(host, port, password, db)
    elif style == "parts":
        values[key + "HOST"] = mastodon_source.url_host(host)
        values[key + "PORT"] = str(int(port))
        values[key + "DB"] = str(int(db))
        values[key + "PASSWORD"] = str(password) if password else None
    else:
        raise RedisInstanceError("env style %r: use url or parts" % (style,))
    return values


def env_absent_values(purpose="cache"):
    """Keys to remove when the instance goes away: Mastodon falls back to the main Redis."""
    if purpose not in PURPOSES:
        raise RedisInstanceError("purpose %r: use cache or sidekiq" % (purpose,))
    return dict((key, None) for key in env_keys(purpose))


def admin_host(bind):
    """The address redis-cli uses to reach the instance from the same host."""
    addresses = [_bind_address(str(b)) for b in bind or []]
    for candidate in ("127.0.0.1", "::1", "localhost"):
        if candidate in addresses:
            return candidate
    for address in addresses:
        if address in ("0.0.0.0", "*"):
            return "127.0.0.1"
        if address in ("::", "::*"):
            return "::1"
    return addresses[0] if addresses else "127.0.0.1"


# Why a setting has the value it has, as a comment above it in the instance's config file, by purpose.
WHY = {
    "cache": {
        "bind": "Loopback unless a password protects the instance.",
        "save": "No background saving: an explicit empty save, because without any save line Redis falls back to "
                "its default save rules.",
        "dir": "Its own directory, so the main Redis's dump.rdb is never near it.",
        "maxmemory": "The limit that makes this a cache: at this size Redis evicts instead of growing.",
        "appendonly": "No AOF either: nothing of the cache is worth a disk write.",
    },
    "sidekiq": {
        "bind": "Loopback unless a password protects the instance.",
        "save": "Snapshots with Redis's default rules, so that a restart finds the queues again.",
        "dir": "Its own directory, so the main Redis's dump.rdb is never near it.",
        "maxmemory": "0 is no limit. With a limit, a full Redis refuses new jobs (noeviction) rather than dropping any.",
        "maxmemory-policy": "Never evict: an evicted key is a lost job, schedule or retry.",
        "appendonly": "And an append-only file, written every second: at most a second of jobs is lost in a crash.",
    },
}
INTRO = {
    "cache": "Everything in it can be lost: Mastodon\n# rebuilds its cache.",
    "sidekiq": "It holds Sidekiq's queued, scheduled\n# and retried jobs: it is saved to disk and never evicts.",
}
# Who writes the files, named in their first line: the role that runs the instance, or a direct caller.
DEFAULT_MANAGER = "fediops.mastodon.redis_instance_config"
MANAGER_RE = re.compile(r"[A-Za-z0-9_.:/ -]{1,100}")


def header(managed_by=DEFAULT_MANAGER):
    """The files' first line, naming who manages the instance (one line: it is written into redis.conf)."""
    if not isinstance(managed_by, str) or not MANAGER_RE.fullmatch(managed_by):
        raise RedisInstanceError("managed_by %r: use up to 100 letters, digits, spaces and _ . : / -" % (managed_by,))
    return "# Ansible managed (%s): changes made here are overwritten.\n" % managed_by


def render_conf(main_pairs, server, instance, purpose="cache", managed_by=DEFAULT_MANAGER):
    """The instance's config file: the settings in order, a why-comment where one helps, then the include."""
    paths = server_paths(server, instance)
    out = [header(managed_by),
           '# %s (%s instance "%s"), started by %s. %s\n'
           % (PURPOSES[purpose]["title"], server, instance, paths["unit"], INTRO[purpose])]
    for name, value in main_pairs:
        if name in WHY[purpose]:
            out.append("# %s\n" % WHY[purpose][name])
        out.append("%s %s\n" % (name, value))
    out.append("# The password lives in a file of its own (mode 0640), so that this file's diff can be shown.\n")
    out.append("include %s\n" % paths["secret_conf"])
    return "".join(out)


def render_secret_conf(secret_pairs, managed_by=DEFAULT_MANAGER):
    """The password file; an empty password means none (loopback only)."""
    return header(managed_by) + "# Password of this instance; empty means none (loopback only).\n" + \
        "".join("%s %s\n" % (name, value) for name, value in secret_pairs)


# What a report of the instance shows (fediops.mastodon.scale's "Cache instance"): never requirepass.
REPORTED_SETTINGS = ("maxmemory", "maxmemory-policy")


def sync_live(run, argv, main_pairs, secret_pairs, check_mode=False, seen=None):
    """Make the running server's live settings match: CONFIG GET, then CONFIG SET of what differs.

    `run(argv, data)` runs redis-cli (authenticated by the caller) and returns (rc, stdout, stderr).
    Returns the names that differed (set unless `check_mode`); raises RedisInstanceError on a failure.
    A `seen` dict receives REPORTED_SETTINGS as CONFIG GET reports them once the run is done (in check mode,
    as they are now), so that a report needs no second read of the server.
    """
    names = live_names(main_pairs, secret_pairs)
    rc, out, err = run(argv + ["CONFIG", "GET"] + names, None)
    if rc != 0:
        raise RedisInstanceError("CONFIG GET failed (%d): %s" % (rc, err.strip() or out.strip()))
    running = parse_config_get(out)
    changes = drift(running, main_pairs, secret_pairs)
    if seen is not None:
        after = dict(running, **({} if check_mode else {n: normalize(n, v) for n, v in changes}))
        seen.update((name, after[name]) for name in REPORTED_SETTINGS if name in after)
    differ = [name for name, _value in changes]
    if changes and not check_mode:
        rc, out, err = run(argv, set_commands(changes).rstrip("\n"))
        answers = out.splitlines()
        if rc != 0 or len(answers) != len(changes) or any(a != "OK" for a in answers):
            raise RedisInstanceError("CONFIG SET of %s failed: %s" % (", ".join(differ), err.strip() or "unexpected answer"))
    return differ
