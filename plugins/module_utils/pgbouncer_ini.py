# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgbouncer.ini: [databases] entries, parsing, and which changes PgBouncer cannot reload.

PgBouncer applies most settings on RELOAD/SIGHUP, keeping its clients. The settings below are
marked CF_NO_RELOAD in PgBouncer's src/main.c (1.18 to 1.24): a change to them only takes effect
after a restart, which drops every client: fediops.mastodon.service_apply restarts PgBouncer only
when one of them changed, and reloads it for the rest.
"""

from __future__ import annotations

import re

from ansible_collections.fediops.mastodon.plugins.module_utils.connection_plan import server_capacity
from ansible_collections.fediops.mastodon.plugins.module_utils.inputs import MAX_POOL_SIZE, whole

NO_RELOAD = frozenset((
    "disable_pqexec", "job_name", "service_name", "listen_addr", "listen_backlog", "listen_port",
    "pidfile", "pkt_buf", "resolv_conf", "so_reuseport", "track_extra_parameters",
    "unix_socket_dir", "unix_socket_group", "unix_socket_mode", "user",
))
# Names PgBouncer's ini parser and Rails' DB_NAME take without quoting.
# Matched with fullmatch: "$" would also match before a final line break, a second line in pgbouncer.ini.
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
HOST_RE = re.compile(r"[A-Za-z0-9_.:/%-]+")
DATABASE_KEYS = ("name", "host", "port", "dbname", "pool_size", "reserve_pool", "pool_mode", "max_db_connections")
POOL_MODES = ("session", "transaction", "statement")


class IniError(ValueError):
    """A [databases] entry PgBouncer would reject."""


def database_problems(entries):
    """Return sentences for every [databases] entry PgBouncer could not load (empty when all are fine)."""
    problems, seen = [], set()
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            problems.append("database entry %d is not a mapping of name, host, port, dbname" % index)
            continue
        shown = entry.get("name", "no name")
        label = "database entry %d (%s)" % (index, shown if NAME_RE.fullmatch(str(shown)) or shown == "no name" else repr(shown))
        unknown = sorted(set(entry) - set(DATABASE_KEYS))
        if unknown:
            problems.append("%s: unknown keys %s; allowed are %s" % (label, ", ".join(unknown), ", ".join(DATABASE_KEYS)))
        name = str(entry.get("name", ""))
        if not NAME_RE.fullmatch(name):
            problems.append("%s: name must be letters, digits, '_', '.', '-'" % label)
        elif name == "pgbouncer":
            problems.append("%s: the name pgbouncer is PgBouncer's admin console; choose another" % label)
        elif name in seen:
            problems.append("%s: the name is listed twice" % label)
        seen.add(name)
        host = str(entry.get("host", ""))
        if not HOST_RE.fullmatch(host):
            problems.append("%s: host %r is empty or has spaces or quotes" % (label, host))
        # whole(): a boolean, 5432.0 or "5432 " is no port, whatever int() makes of it.
        port = whole(entry.get("port", 5432))
        if port is None or not 1 <= port <= 65535:
            problems.append("%s: port %r is not a whole number between 1 and 65535" % (label, entry.get("port")))
        dbname = str(entry.get("dbname", name))
        if not NAME_RE.fullmatch(dbname):
            problems.append("%s: dbname %r must be letters, digits, '_', '.', '-'" % (label, dbname))
        # A pool of 0 server connections makes every client of the database wait forever.
        for key, floor in (("pool_size", 1), ("reserve_pool", 0), ("max_db_connections", 0)):
            if key in entry:
                number = whole(entry[key])
                if number is None or not floor <= number <= MAX_POOL_SIZE:
                    problems.append("%s: %s must be a whole number from %d to %d, got %r"
                                    % (label, key, floor, MAX_POOL_SIZE, entry[key]))
        if "pool_mode" in entry and entry["pool_mode"] not in POOL_MODES:
            problems.append("%s: pool_mode %r is not one of %s" % (label, entry["pool_mode"], ", ".join(POOL_MODES)))
    return problems


def connstr(entry):
    """The right-hand side of a [databases] line for one validated entry."""
    problems = database_problems([entry])
    if problems:
        raise IniError("; ".join(problems))
    parts = ["host=%s" % entry["host"], "port=%d" % int(entry.get("port", 5432)),
             "dbname=%s" % entry.get("dbname", entry["name"])]
    for key in ("pool_size", "reserve_pool", "max_db_connections"):
        if key in entry:
            parts.append("%s=%d" % (key, int(entry[key])))
    if "pool_mode" in entry:
        parts.append("pool_mode=%s" % entry["pool_mode"])
    return " ".join(parts)


def parse(text):
    """{section: {key: value}} as PgBouncer reads it: keys case-insensitive, `;`/`#` comments, last wins."""
    result, section = {}, None
    for raw in (text or "").split("\n"):
        line = raw.strip()
        if not line or line[0] in ";#" or line.startswith("%include"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            result.setdefault(section, {})
            continue
        if section is None or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if section == "pgbouncer":
            key = key.lower()
        result[section][key] = value.strip()
    return result


def nofile_limit(max_client_conn, pool_count, default_pool_size, reserve_pool_size=0, cap=20000, spare=64):
    """Open files PgBouncer needs: one per client, one per server connection, plus `spare` for itself.

    Returns (limit, wanted): `limit` is `wanted` capped at `cap`.
    """
    # One process: the limit is per process (each one opens its own clients and pools).
    wanted = int(max_client_conn) + server_capacity(1, pool_count, default_pool_size, reserve_pool_size) + int(spare)
    return min(wanted, int(cap)), wanted
