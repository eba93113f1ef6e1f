# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read replicas for Mastodon, as pure functions.

Mastodon up to 4.1 reads from replicas through the Makara adapter configured in
config/database.yml; from 4.2 on, Rails' own replica support reads REPLICA_DB_* from the
environment. This file decides the mode, renders both configurations, and builds the strings
PostgreSQL and libpq read (slot names, conninfo, .pgpass lines, URLs) with their quoting rules.
"""

from __future__ import annotations

import re

from urllib.parse import quote

from ansible_collections.fediops.mastodon.plugins.module_utils import mastodon_source, pgbouncer_ini, replica_fence
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_secrets import SecretError, scram_secret

MAKARA = "makara"
NATIVE = "native"
MODES = (MAKARA, NATIVE)

# PostgreSQL's NAMEDATALEN is 64: names keep 63 bytes (ReplicationSlotValidateName).
SLOT_NAME_MAX = 63
SLOT_NAME_RE = re.compile(r"[a-z0-9_]+")

TOP_LEVEL_KEY_RE = re.compile(r"^[^\s#][^:]*:")
PRODUCTION_RE = re.compile(r"production:\s*(#.*)?")

NO_PRODUCTION = ("config/database.yml has no top-level production: block (or does not exist), so it is not Mastodon's "
                 "file: Makara's file is made from it, and root does not copy a file it cannot recognise. Put Mastodon's "
                 "own config/database.yml back (git checkout config/database.yml) and run again.")
FENCE_NEEDS_PGBOUNCER = (
    "the replica-lag fence (read_replica_fence_enabled) repoints PgBouncer's %s entry at the primary while the replica "
    "lags, so it needs PgBouncer in front of the replica")


class ReadReplicaError(ValueError):
    """Input that cannot be turned into a replica configuration."""


def parse_version(version):
    """(major, minor, patch) of a Mastodon version, or ReadReplicaError."""
    try:
        return mastodon_source.parse_version(version)
    except mastodon_source.MastodonSourceError as exc:
        raise ReadReplicaError(str(exc)) from None


def mode_for_version(version):
    """Makara up to 4.1, Rails' native replica support from 4.2 (Makara was removed then)."""
    return MAKARA if parse_version(version)[:2] <= (4, 1) else NATIVE


def mode_problems(version, mode):
    """Sentences describing why `mode` cannot serve Mastodon `version` (empty when it can)."""
    try:
        wanted = mode_for_version(version)
    except ReadReplicaError as exc:
        return [str(exc) + ": set read_replica_mastodon_version to the version you run."]
    if mode in ("auto", "", None):
        return []
    if mode not in MODES:
        return ["read_replica_mode is %r: use auto, makara or native." % (mode,)]
    if mode != wanted:
        if wanted == NATIVE:
            why = "Mastodon %s has no Makara adapter (removed in 4.2)" % version
        else:
            why = "Mastodon %s does not read REPLICA_DB_* (added in 4.2)" % version
        return ["read_replica_mode is %s but %s: set read_replica_mode to %s or auto." % (mode, why, wanted)]
    return []


def resolve_mode(version, mode):
    problems = mode_problems(version, mode)
    if problems:
        raise ReadReplicaError(problems[0])
    return mode_for_version(version)


def slot_name_problem(name):
    """PostgreSQL's rule for replication slot names, as a sentence, or None when the name is valid."""
    if not isinstance(name, str) or name == "":
        return "replication slot name %r is empty: use lowercase letters, digits and underscores." % (name,)
    if len(name.encode("utf-8")) > SLOT_NAME_MAX:
        return ("replication slot name %r is %d characters long: PostgreSQL allows at most %d."
                % (name, len(name.encode("utf-8")), SLOT_NAME_MAX))
    if not SLOT_NAME_RE.fullmatch(name):
        return ("replication slot name %r contains characters PostgreSQL rejects: use only lowercase "
                "letters, digits and underscores (for example %r)." % (name, slot_name_for(name)))
    return None


def slot_name_for(host):
    """A valid slot name derived from an inventory host name."""
    name = re.sub(r"[^a-z0-9_]", "_", str(host).lower())[:SLOT_NAME_MAX]
    return name or "replica"


def database_url(user, password, host, port, dbname):
    """postgresql:// URL with every part percent-encoded; a socket directory goes into ?host=."""
    if not dbname:
        raise ReadReplicaError("a database URL needs a database name")
    userinfo = ""
    if user:
        userinfo = quote(str(user), safe="")
        if password:
            userinfo += ":" + quote(str(password), safe="")
        userinfo += "@"
    host = str(host or "")
    query = []
    netloc_host = ""
    if host.startswith("/"):
        query.append("host=" + quote(host, safe=""))
        if port:
            query.append("port=%d" % int(port))
    else:
        netloc_host = quote(mastodon_source.url_host(host), safe=".-_~[]:")
        if port:
            netloc_host += ":%d" % int(port)
    url = "postgresql://%s%s/%s" % (userinfo, netloc_host, quote(str(dbname), safe=""))
    if query:
        url += "?" + "&".join(query)
    return url


def makara_production(master_url, replica_urls):
    """The guide's `production:` section as data (the `<<: *default` merge key left out)."""
    if not replica_urls:
        raise ReadReplicaError("Makara needs at least one replica URL")
    connections = [{"role": "master", "blacklist_duration": 0, "url": master_url}]
    connections.extend({"role": "slave", "url": url} for url in replica_urls)
    return {
        "adapter": "postgresql_makara",
        "prepared_statements": False,
        "makara": {"id": "postgres", "sticky": True, "connections": connections},
    }


_PLAIN_URL_RE = re.compile(r"[A-Za-z0-9%._~:/@?=&\[\]+-]+")


def _yaml_url(url):
    # Percent-encoded URLs never need YAML quoting; anything else is double-quoted to stay literal.
    if _PLAIN_URL_RE.fullmatch(url) and not url.startswith(("%", "@")):
        return url
    return '"%s"' % url.replace("\\", "\\\\").replace('"', '\\"')


def makara_production_yaml(master_url, replica_urls):
    """The guide's `production:` section as YAML text, in its exact shape."""
    data = makara_production(master_url, replica_urls)
    lines = [
        "production:",
        "  <<: *default",
        "  adapter: %s" % data["adapter"],
        "  prepared_statements: false",
        "  makara:",
        "    id: %s" % data["makara"]["id"],
        "    sticky: true",
        "    connections:",
    ]
    for conn in data["makara"]["connections"]:
        lines.append("      - role: %s" % conn["role"])
        if "blacklist_duration" in conn:
            lines.append("        blacklist_duration: %d" % conn["blacklist_duration"])
        lines.append("        url: %s" % _yaml_url(conn["url"]))
    return "\n".join(lines) + "\n"


def production_adapter(text):
    """The `adapter:` of the top-level `production:` block of a database.yml text, or None."""
    lines = (text or "").splitlines()
    start = next((i for i, line in enumerate(lines) if PRODUCTION_RE.fullmatch(line)), None)
    if start is None:
        return None
    for line in lines[start + 1:]:
        if TOP_LEVEL_KEY_RE.match(line + "\n"):
            break
        match = re.fullmatch(r"\s+adapter:\s*([A-Za-z0-9_]+)\s*", line)
        if match:
            return match.group(1)
    return None


def replace_production_section(text, section):
    """Replace the top-level `production:` block of a database.yml text, keeping everything else.

    The file is ERB, not YAML, so it is edited as text: the block runs until the next top-level
    key; blank and comment lines just before that key stay with it. A file without that block is not
    Mastodon's (the checkout is the mastodon user's to write): ReadReplicaError.
    """
    if not section.endswith("\n"):
        section += "\n"
    lines = (text or "").splitlines(True)
    start = next((i for i, line in enumerate(lines) if PRODUCTION_RE.fullmatch(line.rstrip("\n"))), None)
    if start is None:
        raise ReadReplicaError(NO_PRODUCTION)
    end = next((i for i in range(start + 1, len(lines)) if TOP_LEVEL_KEY_RE.match(lines[i])), len(lines))
    if end < len(lines):
        while end > start + 1 and (lines[end - 1].strip() == "" or lines[end - 1].startswith("#")):
            end -= 1
    return "".join(lines[:start]) + section + "".join(lines[end:])


def native_env(host, port, dbname, user, password, prepared_statements, db_tasks, version="4.4"):
    """REPLICA_DB_* for Mastodon >= 4.2 (None removes a key). REPLICA_DB_NAME is always set: 4.2 to 4.5 need it.

    REPLICA_PREPARED_STATEMENTS and REPLICA_DB_TASKS exist from 4.4; on 4.2 and 4.3 the replica follows
    PREPARED_STATEMENTS, so a replica that must not use prepared statements (behind PgBouncer's
    transaction pooling) sets PREPARED_STATEMENTS=false there.
    """
    if not dbname:
        raise ReadReplicaError("REPLICA_DB_NAME must not be empty: Mastodon 4.2 to 4.5 ignore the replica without it")
    own_switches = parse_version(version)[:2] >= (4, 4)
    env = {
        "REPLICA_DB_HOST": str(host),
        "REPLICA_DB_PORT": str(int(port)),
        "REPLICA_DB_NAME": str(dbname),
        "REPLICA_DB_USER": str(user),
        # Empty means "the primary's password": Mastodon reads an empty REPLICA_DB_PASS as set (Ruby's ENV
        # lookup), which would log in without one, so the key goes and Mastodon falls back to DB_PASS.
        "REPLICA_DB_PASS": str(password) if password else None,
        # A leftover REPLICA_DATABASE_URL would override every REPLICA_DB_* part.
        "REPLICA_DATABASE_URL": None,
        "REPLICA_PREPARED_STATEMENTS": ("true" if prepared_statements else "false") if own_switches else None,
        "REPLICA_DB_TASKS": ("true" if db_tasks else "false") if own_switches else None,
    }
    if not own_switches and not prepared_statements:
        env["PREPARED_STATEMENTS"] = "false"
    return env


def conninfo_value(value):
    """A libpq key=value value: quoted when empty or holding spaces, quotes or backslashes."""
    value = str(value)
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'%s'" % value.replace("\\", "\\\\").replace("'", "\\'")


def conninfo(params):
    """libpq connection string from an ordered list of (key, value) pairs."""
    return " ".join("%s=%s" % (key, conninfo_value(value)) for key, value in params if value not in (None, ""))


def conf_string(value):
    """A postgresql.conf string literal."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "''")


def pgpass_line(host, port, database, user, password):
    """One .pgpass line; ':' and '\\' are escaped with a backslash as libpq expects."""
    def esc(value):
        return str(value).replace("\\", "\\\\").replace(":", "\\:")
    if "\n" in str(password):
        raise ReadReplicaError("a password for a .pgpass file cannot contain a newline")
    return ":".join(esc(v) for v in (host, port, database, user, password)) + "\n"


KEEP = "keep"
TAKE = "take"
REFUSE = "refuse"


def basebackup_decision(has_database, is_standby, local_sysid, primary_sysid, force, datadir=None,
                        has_user_data=True):
    """What the replica's data directory needs: (KEEP | TAKE | REFUSE, sentence).

    A standby of this very primary (same system identifier) is kept, whatever `force` says, so a
    converge never takes a second base backup. Anything else that holds a database is replaced only
    when the operator forces it.
    """
    where = "the data directory %s" % datadir if datadir else "the data directory"
    if not has_database:
        return TAKE, where + " is empty: taking the initial base backup"
    same_system = bool(local_sysid and primary_sysid and str(local_sysid) == str(primary_sysid))
    if is_standby and same_system:
        return KEEP, where + " is already a standby of this primary"
    if same_system:
        # Not in recovery, yet the primary's own system: the primary itself under another inventory
        # name, or a standby that was promoted. Either may be the only copy of the data.
        return REFUSE, ("%s has the primary's system identifier (%s) but is not a standby: it is the primary itself, a "
                        "promoted standby, or a copy of the primary's disk, and is never wiped, whatever "
                        "read_replica_force_rebasebackup says. Check the inventory (mastodon_db_replica must not list the "
                        "primary); on a host that really is a copy, recreate the cluster yourself (pg_dropcluster, "
                        "pg_createcluster) and run again." % (where, local_sysid))
    if is_standby:
        what = "a standby of another primary (system identifier %s, the primary has %s)" % (local_sysid, primary_sysid)
    else:
        what = "a database of its own (system identifier %s)" % (local_sysid,)
    if not is_standby and has_user_data is False:
        return TAKE, ("%s holds a freshly initialised cluster (only template0, template1 and postgres, no user "
                      "tables): replacing it with a base backup" % where)
    if force:
        return TAKE, "%s holds %s and read_replica_force_rebasebackup is true: replacing it" % (where, what)
    return REFUSE, ("%s holds %s; it is never wiped by default. Empty it yourself or set "
                    "read_replica_force_rebasebackup: true to replace it with a base backup of the primary." % (where, what))


def replication_settings(rep, primary, slot, salt=None):
    """The role's SCRAM secret (never the password), .pgpass content and primary_conninfo for the
    replication user. `salt` (bytes) makes the secret reproducible for tests; unset, it is random."""
    user, password = rep["user"], rep["password"]
    if not password:
        raise ReadReplicaError("the replication password is empty: set read_replica_replication_password")
    port = primary.get("port", 5432)
    # PostgreSQL stores a SCRAM secret as given, so the password itself never reaches the server, where
    # log_statement = ddl (or a failed statement) would write it into the server log.
    try:
        secret = scram_secret(password, salt=salt)
    except SecretError as exc:
        raise ReadReplicaError("read_replica_replication_password: %s" % exc) from None
    out = {
        "role_secret": secret,
        # The primary checks the password over its own loopback; replicas use the replication line.
        "pgpass": (pgpass_line("127.0.0.1", port, "postgres", user, password)
                   + pgpass_line(primary.get("address", ""), port, "replication", user, password)),
        "primary_conninfo": None,
    }
    if slot:
        out["primary_conninfo"] = conf_string(conninfo([
            ("host", primary.get("address")), ("port", port), ("user", user),
            ("passfile", rep["passfile"]), ("application_name", slot),
        ]))
    return out


def _problem_list(data):
    problems = []
    hosts = data.get("hosts") or {}
    primaries = list(data.get("primaries") or [])
    replicas = list(data.get("replicas") or [])
    play_hosts = set(data.get("play_hosts") or [])
    if replicas and len(primaries) != 1:
        problems.append("%d replica(s) (%s) but %d primaries in group %s: put exactly one host in it."
                        % (len(replicas), ", ".join(replicas), len(primaries), data.get("primary_group", "mastodon_db_primary")))
    both = sorted(set(primaries) & set(replicas))
    if both:
        problems.append("%s is in both the primary and the replica group: a server is one or the other." % ", ".join(both))
    missing = sorted(h for h in primaries + replicas if h not in play_hosts)
    if missing:
        problems.append("%s must run in this play too (the primary and its replicas configure each other): "
                        "add them to the play's hosts or drop --limit." % ", ".join(missing))
    slots = {}
    for host in replicas:
        slot = (hosts.get(host) or {}).get("slot") or slot_name_for(host)
        problem = slot_name_problem(slot)
        if problem:
            problems.append("read_replica_slot_name of %s: %s" % (host, problem))
        if slot in slots.values():
            problems.append("replication slot name %r is used by two replicas: give %s its own read_replica_slot_name." % (slot, host))
        slots[host] = slot
    if data.get("is_app") and not replicas:
        problems.append("this host is a Mastodon app host but group %s is empty: there is no replica to read from."
                        % data.get("replica_group", "mastodon_db_replica"))
    problems.extend(mode_problems(data.get("mastodon_version"), data.get("mode", "auto")))
    return problems, slots


def plan(data):
    """Everything one host needs, from plain values (see the filter read_replica_plan)."""
    problems, slots = _problem_list(data)
    result = {"problems": problems, "slots": slots, "mode": None, "master_url": None, "replica_urls": [],
              "env": {}, "streaming_env": {}, "streaming_environment": [], "database_yml": None, "basebackup": None,
              "basebackup_reason": None, "warnings": []}
    try:
        result["mode"] = mode_for_version(data.get("mastodon_version"))
    except ReadReplicaError:
        pass
    state = data.get("replica_state")
    if state is not None:
        decision, reason = basebackup_decision(state.get("has_database"), state.get("is_standby"),
                                               state.get("system_identifier"), state.get("primary_system_identifier"),
                                               data.get("force_rebasebackup"), state.get("data_directory"),
                                               str(state.get("has_user_data", True)).lower() != "false")
        result["basebackup"], result["basebackup_reason"] = decision, reason
        if decision == REFUSE:
            problems.append(reason)
    if problems:
        return result
    rep = data.get("replication")
    if rep and data.get("primaries"):
        result.update(replication_settings(rep, (data.get("hosts") or {}).get(data["primaries"][0]) or {},
                                           slots.get(data.get("self"))))
    app = data.get("app")
    if not data.get("is_app") or not app:
        return result
    if app.get("fence") and not app.get("via_pgbouncer"):
        result["warnings"].append(
            FENCE_NEEDS_PGBOUNCER % app.get("pgbouncer_replica_db", "mastodon_replica")
            + ", and Mastodon reads the replica directly here (read_replica_via_pgbouncer is false): it keeps reading "
            "a replica that lags. Set read_replica_via_pgbouncer: true (scale_pgbouncer_enabled: true in "
            "playbooks/scale.yml), or read_replica_fence_enabled: false to go without the fence.")
    hosts = data.get("hosts") or {}
    user, password = app["db_user"], app.get("db_password") or ""
    if app.get("via_pgbouncer"):
        master = (app["pgbouncer_host"], app["pgbouncer_port"], app["pgbouncer_primary_db"])
        replica_ends = [(app["pgbouncer_host"], app["pgbouncer_port"], app["pgbouncer_replica_db"])]
    else:
        primary = hosts[data["primaries"][0]]
        master = (primary["address"], primary["port"], app["db_name"])
        replica_ends = [(hosts[h]["address"], hosts[h]["port"], app["db_name"]) for h in data["replicas"]]
    result["master_url"] = database_url(user, password, *master)
    result["replica_urls"] = [database_url(user, password, *end) for end in replica_ends]
    # Mastodon >= 4.2 and the streaming server take one replica endpoint: the first.
    host, port, dbname = replica_ends[0]
    result["streaming_env"] = {"DB_HOST": str(host), "DB_PORT": str(int(port)), "DB_NAME": str(dbname)}
    result["streaming_environment"] = ["%s=%s" % item for item in result["streaming_env"].items()]
    if result["mode"] == NATIVE:
        result["env"] = native_env(host, port, dbname, user, password,
                                   app.get("prepared_statements", False), app.get("db_tasks", False),
                                   data.get("mastodon_version"))
    else:
        if not password:
            problems.append("read_replica_db_password is empty: Makara's database URLs carry the password, and "
                            "Mastodon does not fall back to DB_PASS for them.")
            return result
        if not any(PRODUCTION_RE.fullmatch(line) for line in (data.get("database_yml") or "").splitlines()):
            problems.append(NO_PRODUCTION)
            return result
        if production_adapter(data.get("database_yml")) == "postgresql_makara":
            problems.append("config/database.yml already names the postgresql_makara adapter (an earlier release of "
                            "this collection wrote it there), and Mastodon's Sidekiq exits on it from 4.1.5. Put "
                            "Mastodon's own file back (git checkout config/database.yml) and run again: the Makara "
                            "file now lives beside it, and only the web units see it in its place.")
            return result
        section = makara_production_yaml(result["master_url"], result["replica_urls"])
        result["database_yml"] = replace_production_section(data.get("database_yml") or "", section)
    return result


def fence_config(data):
    """What the replica-lag fence of one PgBouncer host runs with: {problems, config, pgpass}.

    data: database (the [databases] name Mastodon reads through, mastodon_replica), pgbouncer (the pgbouncer role's
    fact pgbouncer_runtime: file, unit, databases, postgresql {host, port}, client {host, port}), user and password
    (the role Mastodon reads as), max_lag_s, interval_s, resume_lag_s, resume_after_s, passfile, state_file.
    config holds no secret (the program's JSON file); pgpass is the one line of the root-only password file.
    """
    problems = []
    name = data.get("database") or "mastodon_replica"
    bouncer = data.get("pgbouncer") or {}
    entry = next((db for db in bouncer.get("databases") or [] if db.get("name") == name), None)
    if entry is None:
        problems.append(FENCE_NEEDS_PGBOUNCER % name + ": this host's PgBouncer has no %s entry the fence may "
                        "repoint (the pgbouncer role's pgbouncer_runtime_databases). Run the fence beside the "
                        "PgBouncer that serves the replica, or set read_replica_fence_enabled: false." % name)
    if not data.get("password"):
        problems.append("read_replica_db_password is empty: the fence reads the primary and the standby as "
                        "read_replica_db_user with it.")
    problems.extend(replica_fence.settings_problems(int(data["max_lag_s"]), int(data["interval_s"]),
                                                    int(data["resume_lag_s"]), int(data["resume_after_s"])))
    if problems:
        return {"problems": problems, "config": None, "pgpass": None}
    primary = bouncer.get("postgresql") or {}
    fenced = pgbouncer_ini.connstr({"name": name, "host": primary["host"], "port": primary["port"],
                                    "dbname": entry.get("dbname", name)})
    # PgBouncer reaches a primary beside it over PostgreSQL's socket, through a peer map for its own system
    # user; root reads it over loopback with the password instead.
    primary_host = "127.0.0.1" if str(primary["host"]).startswith("/") else str(primary["host"])
    config = {
        "database": name,
        "fenced_connstr": fenced,
        "primary": {"host": primary_host, "port": int(primary["port"]), "dbname": entry.get("dbname", name)},
        "standby": {"host": str(entry["host"]), "port": int(entry.get("port", 5432)), "dbname": entry.get("dbname", name)},
        "pgbouncer": {"host": str((bouncer.get("client") or {}).get("host") or "127.0.0.1"),
                      "port": int((bouncer.get("client") or {}).get("port") or 6432),
                      "unit": bouncer.get("unit") or "pgbouncer.service", "runtime_file": bouncer["file"]},
        "user": str(data["user"]),
        "passfile": data["passfile"],
        "state_file": data["state_file"],
        "max_lag_s": int(data["max_lag_s"]),
        "interval_s": int(data["interval_s"]),
        "resume_lag_s": int(data["resume_lag_s"]),
        "resume_after_s": int(data["resume_after_s"]),
    }
    # One line for every host, port and database: the primary, the standby and PgBouncer itself.
    return {"problems": [], "config": config, "pgpass": pgpass_line("*", "*", "*", data["user"], data["password"])}
