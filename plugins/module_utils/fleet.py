# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet: every host's part in one Mastodon, worked out once from the inventory.

playbooks/scale.yml gives `layout()` the inventory groups, the playbook's `scale_*` settings and what each host
publishes (its address, the roles' plans, its Mastodon processes), and every later play reads the result instead
of working placement out again: which host runs PgBouncer, the cache, Sidekiq's Redis and the scheduler, where
each application host points Mastodon, what every PgBouncer opens, which ports each host uses, who depends on
whom, and the input of the connection plan. The defaults of the settings live here, and only here.

Plain values in, plain values out: no secret goes in (only whether one is set), none comes out.
"""

from __future__ import annotations

from ansible_collections.fediops.mastodon.plugins.module_utils import inputs
from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import ConnectionPlanError, plan
from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_source import (
    MastodonSourceError, parse_version, url_host)
from ansible_collections.fediops.mastodon.plugins.module_utils.site_plan import demand_input

GROUPS = {"primary": "mastodon_db_primary", "replica": "mastodon_db_replica", "app": "mastodon_app",
          "cache": "mastodon_cache", "front": "mastodon_front"}

# The settings of playbooks/scale.yml (inventory variables) and their defaults: the one place they are written.
SETTINGS = {
    "scale_pgbouncer_enabled": True,
    # primary: one PgBouncer on the database primary; app: one on every application host.
    "scale_pgbouncer_placement": "primary",
    "scale_read_replica_enabled": True,
    "scale_redis_cache_enabled": True,
    # The host of the one cache every application host shares; empty: the mastodon_cache host, else the first
    # application host.
    "scale_cache_host": "",
    # A cache of its own on each application host: refused with more than one (Rails.cache holds state).
    "scale_cache_per_host": False,
    "scale_sidekiq_redis_enabled": False,
    # The host of Sidekiq's own Redis; empty: the first application host.
    "scale_sidekiq_redis_host": "",
    "scale_sidekiq_queues_enabled": True,
    # The one application host whose Sidekiq serves the scheduler queue; empty: the first.
    "scale_sidekiq_scheduler_host": "",
    # The Sidekiq processes the plan counts when sidekiq_queues is not applied (Mastodon's dist/ unit: -c 25).
    "scale_sidekiq_unmanaged": [{"name": "mastodon-sidekiq", "threads": 25}],
    "scale_postgresql_max_connections": None,
    "scale_postgresql_superuser_reserved_connections": None,
    "scale_metrics_enabled": False,
    "scale_report_path": "",
    # How many application hosts restart at once: a count, or a share such as "25%".
    "scale_restart_batch": 1,
    # The share of the fleet's Puma threads that must keep serving while a batch restarts.
    "scale_restart_keep_serving": "50%",
    # Take a leftover DATABASE_URL (and REPLICA_DATABASE_URL) out of .env.production instead of refusing it.
    "scale_remove_database_url": False,
}
BOOLEANS = ("scale_pgbouncer_enabled", "scale_read_replica_enabled", "scale_redis_cache_enabled", "scale_cache_per_host",
            "scale_sidekiq_redis_enabled", "scale_sidekiq_queues_enabled", "scale_metrics_enabled",
            "scale_remove_database_url")
# Keys of .env.production that silently win over what the roles write (config/database.yml, streaming/database.js).
OVERRIDING_URLS = ("DATABASE_URL", "REPLICA_DATABASE_URL")
# Facts the playbook itself sets with this prefix: not settings.
OUTPUTS = ("scale_fleet", "scale_report")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
WILDCARDS = ("*", "0.0.0.0", "::", "")


class FleetError(ValueError):
    """Input that is not a fleet (wrong types): the playbook's own inputs, not the operator's."""


def _bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    return None


def settings_of(given, problems):
    """The settings with their defaults; unknown scale_* names and wrong values become problems."""
    given = dict(given or {})
    for name in OUTPUTS:
        given.pop(name, None)
    unknown = sorted(name for name in given if name not in SETTINGS)
    for name in unknown:
        problems.append("%s is not a setting of playbooks/scale.yml (a typo?); its settings are %s."
                        % (name, ", ".join(sorted(SETTINGS))))
    out = {}
    for name, default in SETTINGS.items():
        value = given.get(name, default)
        if value is None and default is not None:
            value = default
        if name in BOOLEANS:
            parsed = _bool(value)
            if parsed is None:
                problems.append("%s must be true or false, not %r." % (name, value))
                parsed = default
            value = parsed
        out[name] = value
    if out["scale_pgbouncer_placement"] not in ("primary", "app"):
        problems.append("scale_pgbouncer_placement must be primary or app (it is %s)." % out["scale_pgbouncer_placement"])
        out["scale_pgbouncer_placement"] = "primary"
    return out


def _non_loopback(binds):
    return [b.lstrip("-") for b in binds or [] if b.lstrip("-") not in LOOPBACK + WILDCARDS]


def _address_of(host, data):
    return str((data.get("hosts", {}).get(host) or {}).get("address") or "")


def _shared_instance(kind, host, users, data, problems, setting_of):
    """Where a Redis instance several hosts use listens and is reached: {host, bind, address, port, shared}.

    Shared with other hosts, it listens on its bind list plus the host's own address when the list holds none
    but loopback, and needs a password; alone, it stays on loopback."""
    info = (data["hosts"].get(host) or {}).get(kind) or {}
    bind = [str(b) for b in (info.get("bind") or ["127.0.0.1", "-::1"])]
    shared = any(user != host for user in users)
    if shared and not _non_loopback(bind):
        own = _address_of(host, data)
        if own:
            bind = bind + [own]
    address = _non_loopback(bind)[0] if shared and _non_loopback(bind) else "127.0.0.1"
    prefix = {"redis_cache": "redis_cache_", "sidekiq_redis": "sidekiq_redis_"}[kind]
    if shared and address == "127.0.0.1":
        problems.append("%s runs %s for other hosts too, so it must listen on an address they reach: %sbind is %s and "
                        "the host has no address of its own in the facts." % (host, setting_of, prefix, ", ".join(bind)))
    if shared and not info.get("password_set"):
        problems.append("%s runs %s for other hosts too, which reach it over the network: set %spassword."
                        % (host, setting_of, prefix))
    return {"host": host, "bind": bind, "address": address, "port": int(info.get("port") or 0), "shared": shared}


def _published(info):
    """What a host publishes, with what its checkout (mastodon_checkout's result, under `checkout`) says filled in:
    the version, the upgrade under way and the keys of .env.production, and the media settings its role is not
    asked to change (Mastodon keeps storing uploads where .env.production says now)."""
    checkout = (info or {}).get("checkout")
    if not isinstance(checkout, dict):
        return info
    info = dict(info)
    for key, default in (("version", ""), ("upgrade", {}), ("env_keys", [])):
        info.setdefault(key, checkout.get(key, default))
    media = dict(info.get("media") or {})
    media["storage"] = media.get("storage") or checkout.get("media_storage", "local")
    media["shared_dir"] = media.get("shared_dir") or checkout.get("paperclip_root_path", "")
    info["media"] = media
    return info


def _share(value, total, name, problems):
    """A count, or "N%" of `total`, as a whole number; a problem naming `name` when it is neither."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            percent = float(text[:-1])
            if not 0 < percent <= 100:
                raise ValueError(text)
            return max(1, int(total * percent / 100))
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(text)
        return int(text)
    except ValueError:
        problems.append("%s must be a whole number of at least 1 or a share such as 25%% (it is %r)." % (name, value))
        return 1


def _version_of(data, apps, problems):
    versions = sorted({str((data["hosts"].get(h) or {}).get("version") or "") for h in apps} - {""})
    upgrades = {tuple(sorted(((data["hosts"].get(h) or {}).get("upgrade") or {}).items())) for h in apps}
    if len(versions) > 1 and len(upgrades) == 1 and upgrades != {()}:
        # Half-way through playbooks/upgrade.yml: the fleet follows the release the upgrade completes.
        under_way = dict(next(iter(upgrades)))
        if set(versions) <= {under_way.get("from"), under_way.get("to")}:
            return under_way["to"]
    if len(versions) > 1:
        problems.append("the application hosts run Mastodon %s (lib/mastodon/version.rb): finish the upgrade on every "
                        "host first (playbooks/upgrade.yml), or set mastodon_version." % " and ".join(versions))
    return versions[0] if versions else ""


def _at_least(version, wanted):
    try:
        return parse_version(version) >= parse_version(wanted)
    except MastodonSourceError:
        return False


def layout(data):
    """The fleet, from {groups, settings, hosts} (see the module docstring). Returns a dict; never raises on the
    operator's input: what cannot work is in `problems`, each naming the variable to change."""
    if not isinstance(data, dict):
        raise FleetError("the fleet input must be a mapping")
    problems = []
    settings = settings_of(data.get("settings"), problems)
    groups = {key: list((data.get("groups") or {}).get(name) or []) for key, name in GROUPS.items()}
    hosts_in = data.setdefault("hosts", {})
    if not isinstance(hosts_in, dict):
        raise FleetError("hosts must be a mapping of host name to what it publishes")
    hosts_in = data["hosts"] = {host: _published(info) for host, info in hosts_in.items()}

    if len(groups["primary"]) != 1 or not groups["app"]:
        problems.append("the inventory needs exactly one host in mastodon_db_primary (it has %d) and at least one in "
                        "mastodon_app (it has %d); a one-host server is in both."
                        % (len(groups["primary"]), len(groups["app"])))
        return {"problems": problems, "settings": settings}
    primary, apps = groups["primary"][0], groups["app"]
    if len(groups["cache"]) > 1:
        problems.append("the group mastodon_cache holds at most one host (it has %s)." % ", ".join(groups["cache"]))
    replicas = groups["replica"] if settings["scale_read_replica_enabled"] else []
    version = _version_of(data, apps, problems)
    native_replica = bool(replicas) and (_at_least(version, "4.2") or not version)
    every = sorted(set(groups["primary"] + groups["replica"] + apps + groups["cache"] + groups["front"]))
    out_hosts = {h: {"groups": [name for key, name in GROUPS.items() if h in groups[key]], "ports": [],
                     "depends_on": [], "runs": []} for h in every}

    def runs(host, what):
        if what not in out_hosts[host]["runs"]:
            out_hosts[host]["runs"].append(what)

    for host in groups["primary"] + groups["replica"]:
        runs(host, "postgresql")
    for host in apps:
        runs(host, "mastodon")

    # The scheduler queue: exactly one application host.
    scheduler = settings["scale_sidekiq_scheduler_host"] or apps[0]
    if scheduler not in apps:
        problems.append("scale_sidekiq_scheduler_host must be one of the application hosts (%s); it is %s."
                        % (", ".join(apps), scheduler))

    # PgBouncer: on the primary for every application host, or one on each application host.
    placement = settings["scale_pgbouncer_placement"]
    primary_plan = (hosts_in.get(primary) or {}).get("pgbouncer") or {}
    remote = [_address_of(h, data) for h in apps if h != primary]
    pgbouncer = {"enabled": settings["scale_pgbouncer_enabled"], "placement": placement, "hosts": [],
                 "databases": [], "endpoints": {}, "fence_hosts": [],
                 # The addresses PgBouncer's hba (primary placement) or PostgreSQL's pg_hba (app placement) admit.
                 "remote_clients": remote,
                 # PgBouncer on the primary reaches the replica from the primary's own address.
                 "replica_clients": [_address_of(primary, data) or "127.0.0.1"] if placement == "primary" else [],
                 "primary_address": _address_of(primary, data) or "127.0.0.1"}
    if pgbouncer["enabled"]:
        pgbouncer["hosts"] = [primary] if placement == "primary" else list(apps)
        pgbouncer["databases"] = ([{"name": "mastodon_replica", "host": _address_of(replicas[0], data),
                                    "port": int((hosts_in.get(replicas[0]) or {}).get("postgresql_port") or 5432),
                                    "dbname": primary_plan.get("db_name") or "mastodon_production"}]
                                  if native_replica else [])
        listen = [a.strip() for a in str(primary_plan.get("listen_addr") or "127.0.0.1").split(",")]
        remote_apps = [h for h in apps if h != primary]
        primary_reached = next((a for a in listen if a not in LOOPBACK + WILDCARDS), "")
        if not primary_reached and listen and listen[0] in WILDCARDS:
            primary_reached = _address_of(primary, data)
        if placement == "primary" and remote_apps and not primary_reached:
            problems.append("with PgBouncer on the primary, application hosts on other machines reach it only when the "
                            "primary's pgbouncer_listen_addr is an address they can reach (it is %s)."
                            % ", ".join(listen))
        for host in pgbouncer["hosts"]:
            runs(host, "pgbouncer")
        # The replica-lag fence runs beside every PgBouncer that serves the replica, where the host wants it
        # (read_replica_fence_enabled, published by the read_replica role's plan).
        if pgbouncer["databases"]:
            pgbouncer["fence_hosts"] = [h for h in pgbouncer["hosts"] if _fence_wanted(hosts_in, h)]
            for host in pgbouncer["fence_hosts"]:
                runs(host, "replica_fence")
        for host in apps:
            if placement == "app" or host == primary:
                listen_port = ((hosts_in.get(host) or {}).get("pgbouncer", {})).get("listen_port")
                end = {"host": host, "local": True, "port": int(listen_port or 6432)}
            else:
                end = {"host": primary, "local": False, "address": primary_reached,
                       "port": int(primary_plan.get("listen_port") or 6432)}
            pgbouncer["endpoints"][host] = end

    # The cache: one Rails.cache for every process of the fleet.
    cache = None
    if settings["scale_redis_cache_enabled"]:
        if settings["scale_cache_per_host"]:
            if len(apps) > 1:
                problems.append(
                    "scale_cache_per_host is true, but %d application hosts would each keep a Rails.cache of their own. "
                    "Mastodon keeps state there that never expires and is refreshed only on the host that changed it "
                    "(admin settings, IP blocks, the accounts a user blocks or mutes, rate-limit counters): a block or "
                    "a setting made through one host would be ignored by the others, and every rate limit multiplied "
                    "by %d. Leave scale_cache_per_host false: one cache serves them all (scale_cache_host)."
                    % (len(apps), len(apps)))
            for host in apps:
                runs(host, "cache")
        else:
            cache_host = settings["scale_cache_host"] or (groups["cache"] or apps)[0]
            if cache_host not in apps + groups["cache"]:
                problems.append("scale_cache_host is %s, which is in neither mastodon_app nor mastodon_cache; name one "
                                "of %s." % (cache_host, ", ".join(apps + groups["cache"])))
            else:
                cache = _shared_instance("redis_cache", cache_host, apps, data, problems, "the shared cache")
                runs(cache_host, "cache")

    sidekiq_redis = None
    if settings["scale_sidekiq_redis_enabled"]:
        host = settings["scale_sidekiq_redis_host"] or apps[0]
        if host not in apps + groups["cache"]:
            problems.append("scale_sidekiq_redis_host is %s, which is in neither mastodon_app nor mastodon_cache; name one "
                            "of %s." % (host, ", ".join(apps + groups["cache"])))
        else:
            sidekiq_redis = _shared_instance("sidekiq_redis", host, apps, data, problems, "Sidekiq's Redis")
            runs(host, "sidekiq_redis")

    # Settings in .env.production that would silently win over what the roles write, or stop Mastodon.
    for host in apps:
        keys = (hosts_in.get(host) or {}).get("env_keys") or []
        leftover = [key for key in OVERRIDING_URLS if key in keys]
        if leftover and not settings["scale_remove_database_url"]:
            problems.append(
                "%s's .env.production sets %s, which wins over every DB_* the collection writes (in Rails and in "
                "streaming): Mastodon would bypass PgBouncer and the connection plan would be wrong. Take it out, or "
                "set scale_remove_database_url: true to have the run remove it." % (host, " and ".join(leftover)))
        if "REDIS_NAMESPACE" in keys and _at_least(version, "4.4"):
            problems.append(
                "%s's .env.production sets REDIS_NAMESPACE, and Mastodon %s refuses to start with it, even empty "
                "(deprecated in 4.3, an error from 4.4). Move the keys out of the namespace as Mastodon's 4.3 upgrade "
                "notes describe, remove the REDIS_NAMESPACE line, then run again." % (host, version))
    warnings = ["%s's .env.production sets REDIS_NAMESPACE, deprecated in Mastodon 4.3: Mastodon 4.4 refuses to start "
                "with it. Move the keys out of the namespace before upgrading." % host
                for host in apps if "REDIS_NAMESPACE" in ((hosts_in.get(host) or {}).get("env_keys") or [])
                and _at_least(version, "4.3") and not _at_least(version, "4.4")]
    if native_replica and not pgbouncer["enabled"] and any(_fence_wanted(hosts_in, h) for h in apps):
        warnings.append(
            "the replica-lag fence (read_replica_fence_enabled) repoints PgBouncer's mastodon_replica entry at the primary "
            "while the replica lags, so it needs PgBouncer in front of the replica: with scale_pgbouncer_enabled false, "
            "Mastodon reads the replica directly and keeps reading it while it lags. Set scale_pgbouncer_enabled: true, "
            "or read_replica_fence_enabled: false to go without the fence.")

    # Media: every application host must see every upload. Object storage, or one folder all of them share.
    media = {host: (hosts_in.get(host) or {}).get("media") or {"storage": "local"} for host in apps}
    storages = sorted({str(m.get("storage")) for m in media.values()})
    if len(storages) > 1:
        problems.append("media_storage differs between the application hosts (%s): every host must store uploads the "
                        "same way." % ", ".join(storages))
    elif storages == ["s3"]:
        if len({repr(sorted((m.get("s3") or {}).items())) for m in media.values()}) > 1:
            problems.append("the media_s3_* settings differ between the application hosts: an upload stored through "
                            "one would not be found through another. Set them once, for every host.")
    elif len(apps) > 1 and all(m.get("shared_dir") for m in media.values()):
        unproven = [host for host, m in sorted(media.items()) if not _bool(m.get("shared_proven", True))]
        if unproven:
            problems.append("media_shared_dir is not shared: the marker %s wrote into it is not there on %s. Mount the "
                            "same folder on every application host, or use object storage (media_storage: s3)."
                            % (apps[0], ", ".join(unproven)))
    elif len(apps) > 1:
        problems.append(
            "%d application hosts keep uploads on their own disk (media_storage: local), so a file uploaded through "
            "one answers 404 through the others. Use object storage (media_storage: s3 and the media_s3_* settings), "
            "or a folder every host mounts (media_shared_dir), which the run then proves shared." % len(apps))

    # The front door: nginx on the mastodon_front hosts, in front of every application host's web and streaming.
    fronts = groups["front"]
    for host in apps:
        info = hosts_in.get(host) or {}
        # A front door on another host reaches the processes only on this host's own address.
        remote_front = _address_of(host, data) if any(front != host for front in fronts) else ""
        entry = out_hosts[host]
        entry["web_bind"] = (info.get("web") or {}).get("bind") or remote_front
        entry["streaming_bind"] = (info.get("streaming") or {}).get("bind") or remote_front
        web_host = url_host(entry["web_bind"] if entry["web_bind"] not in WILDCARDS else "127.0.0.1")
        streaming_host = url_host(entry["streaming_bind"] if entry["streaming_bind"] not in WILDCARDS else "127.0.0.1")
        # What answers once a restart is done, on the addresses the processes really listen on.
        entry["health_urls"] = {
            "^mastodon-web": ["http://%s:%d/health" % (web_host, int((info.get("web") or {}).get("port") or 3000))],
            "^mastodon-streaming": ["http://%s:%d/api/v1/streaming/health" % (streaming_host, int(port))
                                    for port in (info.get("streaming") or {}).get("ports") or [4000]]}
        entry["web_address"] = entry["web_bind"] or "127.0.0.1"
        entry["streaming_address"] = entry["streaming_bind"] or "127.0.0.1"
    front = None
    if fronts:
        front = {"hosts": fronts,
                 "web": [[h, out_hosts[h]["web_address"], int(((hosts_in.get(h) or {}).get("web") or {}).get("port") or 3000)]
                         for h in apps],
                 "streaming": [[h, out_hosts[h]["streaming_address"], int(port)] for h in apps
                               for port in ((hosts_in.get(h) or {}).get("streaming") or {}).get("ports") or [4000]]}
        for host in fronts:
            if host not in out_hosts:
                out_hosts[host] = {"groups": [GROUPS["front"]], "ports": [], "depends_on": [], "runs": []}
            runs(host, "front")

    # Restarts, a batch of application hosts at a time: the others keep serving behind the front door.
    batch = min(_share(settings["scale_restart_batch"], len(apps), "scale_restart_batch", problems), len(apps))
    keep = _share(settings["scale_restart_keep_serving"], 100, "scale_restart_keep_serving", problems)
    if front and len(apps) > 1:
        capacity = {h: _web_threads(hosts_in.get(h) or {}) for h in apps}
        total = sum(capacity.values()) or 1
        # The worst batch: the hosts with the most threads restarting together.
        largest = sum(sorted(capacity.values(), reverse=True)[:batch])
        if batch >= len(apps):
            problems.append("scale_restart_batch restarts %d of %d application hosts at once, which leaves the front door "
                            "without a host to send requests to: lower it." % (batch, len(apps)))
        elif (total - largest) * 100 < keep * total:
            problems.append(
                "scale_restart_batch restarts up to %d application hosts at once (%d of the fleet's %d Puma threads), "
                "which leaves less than scale_restart_keep_serving (%d%%) of them serving: lower scale_restart_batch."
                % (batch, largest, total, keep))

    # Who depends on whom: an application host needs the database hosts, its PgBouncer and the shared Redis servers.
    for host in apps:
        needs = [primary] + replicas
        for instance in (cache, sidekiq_redis):
            if instance:
                needs.append(instance["host"])
        out_hosts[host]["depends_on"] = sorted(set(needs) - {host})

    # Ports: no two services of one host on one port.
    for host in every:
        info = hosts_in.get(host) or {}
        ports = out_hosts[host]["ports"]
        plan_of = info.get("pgbouncer") or {}
        if "postgresql" in out_hosts[host]["runs"]:
            ports.append(["PostgreSQL (pgbouncer_postgresql_port)", plan_of.get("postgresql_port") or 5432])
        if "pgbouncer" in out_hosts[host]["runs"]:
            ports.append(["pgbouncer_listen_port", plan_of.get("listen_port") or 6432])
            ports.append(["pgbouncer_check_port", plan_of.get("check_port") or 16432])
        if "mastodon" in out_hosts[host]["runs"]:
            ports.append(["web (web_health_url)", (info.get("web") or {}).get("port") or 3000])
            ports.append(["the main Redis (redis_cache_main_port)", (info.get("redis_cache") or {}).get("main_port") or 6379])
            for port in (info.get("streaming") or {}).get("ports") or [4000]:
                ports.append(["streaming_ports %s" % port, port])
        if "cache" in out_hosts[host]["runs"]:
            ports.append(["redis_cache_port", (info.get("redis_cache") or {}).get("port") or 6380])
        if "sidekiq_redis" in out_hosts[host]["runs"]:
            ports.append(["sidekiq_redis_port", (info.get("sidekiq_redis") or {}).get("port") or 6381])
        problems.extend(inputs.port_clashes([[owner, port, host] for owner, port in ports]))

    # What every application host points Mastodon at, and the other per-host decisions.
    for host in apps:
        entry = out_hosts[host]
        entry["scheduler"] = host == scheduler
        entry["cache"] = (cache if cache else {"host": host, "address": "127.0.0.1", "shared": False,
                                               "port": int((hosts_in.get(host) or {}).get("redis_cache", {}).get("port")
                                                           or 6380)}) if settings["scale_redis_cache_enabled"] else None
        entry["remove_own_cache"] = bool(cache) and cache["host"] != host
        entry["sidekiq_redis"] = sidekiq_redis
        entry["pgbouncer"] = pgbouncer["endpoints"].get(host)
        # PostgreSQL itself, never PgBouncer: where migrations go (transaction pooling cannot run them).
        entry["postgresql"] = {"host": "/var/run/postgresql" if host == primary else _address_of(primary, data),
                               "port": int(primary_plan.get("postgresql_port") or 5432)}

    # What each host's plays apply, decided here so that no play works placement out again.
    runtime = [d["name"] for d in pgbouncer["databases"]]
    for host in every:
        entry, info = out_hosts[host], hosts_in.get(host) or {}
        # Where this host's Mastodon reaches PgBouncer for the replica: the primary's, else its own on loopback.
        entry["pgbouncer_host"] = (pgbouncer["endpoints"].get(host) or {}).get("address", "127.0.0.1")
        entry["pgbouncer_server"] = None
        if "pgbouncer" in entry["runs"]:
            entry["pgbouncer_server"] = {
                # An application host's PgBouncer reaches PostgreSQL over TCP; the primary's keeps its own setting.
                "postgresql_host": None if host == primary else pgbouncer["primary_address"],
                # The entries the replica-lag fence repoints while PgBouncer runs.
                "runtime_databases": runtime if host in pgbouncer["fence_hosts"] else []}
        entry["metrics"] = _metrics_of(entry["runs"], info, sidekiq_redis)

    plan_input, demands = _plan_input(data, apps, settings, pgbouncer, native_replica, problems)
    if pgbouncer["enabled"]:
        pgbouncer["report"] = {
            "placement": placement,
            "databases": [primary_plan.get("db_name") or "mastodon_production"] + [d["name"] for d in pgbouncer["databases"]],
            "pool_mode": primary_plan.get("pool_mode") or "transaction",
            "instances": {h: {key: ((hosts_in.get(h) or {}).get("pgbouncer") or {}).get(key) for key in
                              ("processes", "max_client_conn", "default_pool_size", "reserve_pool_size")}
                          for h in pgbouncer["hosts"]},
        }
    return {
        "primary": primary, "replicas": replicas, "apps": apps,
        "cache": cache, "sidekiq_redis": sidekiq_redis, "scheduler": scheduler,
        "pgbouncer": pgbouncer, "native_replica": native_replica, "version": version,
        "hosts": out_hosts, "plan_input": plan_input, "demands": demands, "settings": settings, "problems": problems,
        "warnings": warnings, "front": front, "batch": batch,
    }


# The exporter ports of the Redis servers a host may run (the metrics role's metrics_redis_instances).
REDIS_EXPORTERS = {"main": 9121, "cache": 9122, "sidekiq": 9123}


def _metrics_of(runs, info, sidekiq_redis):
    """What the metrics role exports on a host, without passwords (the play adds each instance's)."""
    redis_plan = info.get("redis_cache") or {}
    redis = []
    if "mastodon" in runs:
        # Sidekiq's queue sizes come from the Redis that holds them: the main one unless Sidekiq has its own.
        redis.append({"name": "main", "address": "redis://127.0.0.1:%s" % (redis_plan.get("main_port") or 6379),
                      "port": REDIS_EXPORTERS["main"], "queues": not sidekiq_redis})
    if "sidekiq_redis" in runs:
        redis.append({"name": "sidekiq", "address": "redis://127.0.0.1:%s" % sidekiq_redis["port"],
                      "port": REDIS_EXPORTERS["sidekiq"], "queues": True})
    if "cache" in runs:
        redis.append({"name": "cache", "address": "redis://127.0.0.1:%s" % (redis_plan.get("port") or 6380),
                      "port": REDIS_EXPORTERS["cache"], "queues": False})
    return {"pgbouncer": "pgbouncer" in runs and _bool((info.get("pgbouncer") or {}).get("stats_password_set")) is True,
            "postgresql": "postgresql" in runs, "redis_instances": redis}


def _fence_wanted(hosts_in, host):
    """Whether `host` runs the replica-lag fence beside its PgBouncer (on unless its plan says no)."""
    return _bool(((hosts_in.get(host) or {}).get("read_replica") or {}).get("fence", True)) is not False


def _web_threads(info):
    demand = (info.get("web") or {}).get("demand") or {}
    return int(demand.get("processes") or 0) * int(demand.get("threads") or 0)


def _plan_input(data, apps, settings, pgbouncer, native_replica, problems):
    """The connection plan of the whole fleet: every application host's processes against every PgBouncer."""
    demands = {}
    for host in apps:
        info = data["hosts"].get(host) or {}
        demand = {}
        if info.get("web"):
            demand["web"] = (info["web"] or {}).get("demand")
        if info.get("streaming"):
            demand["streaming"] = (info["streaming"] or {}).get("demand")
        demand["sidekiq"] = (info.get("sidekiq") if settings["scale_sidekiq_queues_enabled"]
                             else settings["scale_sidekiq_unmanaged"])
        demands[host] = {key: value for key, value in demand.items() if value}
    out = demand_input(demands)
    if native_replica:
        out["replica"] = True
    if pgbouncer["enabled"]:
        pools = 1 + len(pgbouncer["databases"])
        bouncers = []
        for host in pgbouncer["hosts"]:
            own = (data["hosts"].get(host) or {}).get("pgbouncer") or {}
            entry = {"name": host, "processes": own.get("processes") or 1,
                     "default_pool_size": own.get("default_pool_size") or 20,
                     "reserve_pool_size": own.get("reserve_pool_size") or 0,
                     "max_client_conn": own.get("max_client_conn") or 100}
            if pgbouncer["placement"] == "app":
                # Each serves only its own host's processes.
                own_demand = demand_input({host: demands[host]})
                try:
                    entry["clients"] = plan(replica=native_replica, **own_demand)["client_connections"]
                except ConnectionPlanError as exc:
                    problems.append("%s: %s" % (host, exc))
            bouncers.append(entry)
        out["pgbouncer"] = {"pools": pools, "hosts": bouncers}
    return out, demands
