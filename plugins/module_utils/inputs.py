# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of operator input that several roles share, as pure functions.

Every role validates before it changes anything. The checks here are the ones whose rules come from
PostgreSQL, PgBouncer, Redis, systemd or TCP rather than from one role: addresses that end up in
pg_hba.conf, listen_addr or a URL, PostgreSQL names and sizes, ports, bounded whole numbers. Each
problem is a sentence that names the variable, so the operator knows what to fix; a value is quoted
only when it cannot be a secret.

`problems(checks)` takes a list of [variable, kind, value] and returns every problem at once.

Values are taken as they are, never stripped: a role writes the value it validated into a config
file, so "10.0.0.5\\n" or "10 " must be refused, not read as 10.0.0.5 or 10.
"""

from __future__ import annotations

import ipaddress
import re

from urllib.parse import urlsplit


class InputError(ValueError):
    """A value no check accepts; the message names what was expected."""


# PostgreSQL's and PgBouncer's integer settings are C ints (guc.c's config_int, PgBouncer's cf_int).
INT_MAX = 2 ** 31 - 1
# PostgreSQL's MAX_BACKENDS (postmaster.h): the most max_connections, max_wal_senders and
# max_replication_slots can be.
MAX_BACKENDS = 262143
# The largest pool of database connections the roles accept (PgBouncer's pool sizes, DB_POOL): each server
# connection is a PostgreSQL backend of several MB, and 10,000 is far past what one Mastodon database
# serves while still catching an extra zero or two.
MAX_POOL_SIZE = 10000
# Plain decimal digits as Jinja renders a number: no sign but a leading -, no spaces, no leading zeros, at
# most 19 digits (Python refuses to convert longer digit strings, and no bound here comes near them).
WHOLE_RE = re.compile(r"-?(?:0|[1-9][0-9]{0,18})")
# PostgreSQL's memory and size units are case-sensitive (guc.c): B, kB, MB, GB, TB. A space may separate
# the number from the unit (parse_int skips it); a line break or a tab may not reach the file.
PG_SIZE_RE = re.compile(r"(?P<number>-1|0|[1-9][0-9]{0,18})(?: ?(?P<unit>B|kB|MB|GB|TB))?")
PG_SIZE_UNITS = {"B": 1, "kB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}
# Base units of PostgreSQL's size settings (GUC_UNIT_BYTE, _KB, _BLOCKS, _MB, _XBLOCKS of 8kB).
PG_BASE_UNITS = {"B": 1, "kB": 1024, "8kB": 8192, "MB": 1024 ** 2}
# Names this collection writes unquoted into pg_hba.conf, SQL and pgbouncer.ini: PostgreSQL's plain
# identifiers in lower case, at most 63 bytes (NAMEDATALEN - 1).
PG_NAME_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Database names may also hold '-' and '.', as Mastodon's own defaults do not but operators' may.
PG_DBNAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}")
# Keywords of pg_hba.conf's database and user columns (PostgreSQL's "Client Authentication" chapter):
# unquoted there they mean a rule, not a name, so a database or user so named would match every one.
PG_HBA_KEYWORDS = ("all", "sameuser", "samerole", "samegroup", "replication")
# Role names PostgreSQL reserves (CREATE ROLE refuses them; public is every role, none and the
# current_* names are role specifications in its grammar).
PG_RESERVED_ROLES = ("public", "none", "current_user", "current_role", "session_user")
# Keys of free-form settings written as `key = value` lines (pgbouncer.ini, postgresql.conf).
SETTING_KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
# A Unix socket directory as libpq and PgBouncer read a host: absolute, no spaces, quotes or '='.
SOCKET_DIR_RE = re.compile(r"/[A-Za-z0-9_./-]*")
# A path written into a unit file or a config line: absolute, and none of the characters systemd or a
# config parser reads specially (spaces, quotes, backslashes, % specifiers, line breaks).
PLAIN_PATH_RE = re.compile(r"/[A-Za-z0-9_.@+/-]*")
# systemd instance names and the file names made from them.
INSTANCE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
# A DNS name as a URL carries it: letters, digits and hyphens in dot-separated labels.
HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                         r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
URL_PATH_RE = re.compile(r"(?:/[A-Za-z0-9._~%-]*)*")
# Below this port a process needs CAP_NET_BIND_SERVICE (net.ipv4.ip_unprivileged_port_start).
FIRST_UNPRIVILEGED_PORT = 1024


def _text(value):
    """`value` as the text a template would write, or InputError for what is no address at all."""
    if value is None or isinstance(value, (bool, list, tuple, dict)):
        raise InputError("must be an address, not %s" % _type_name(value))
    return str(value)


def _type_name(value):
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean (YAML reads true, false, yes and no as booleans)"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, float):
        return "a number with a decimal point"
    return "text"


def ip(value):
    """The ip_address of `value`, or InputError (hostnames included: they are not resolved here).

    Refused besides hostnames: a zone id (fe80::1%eth0), which no URL, pg_hba.conf line or Redis bind
    line can carry as written, and an IPv4-mapped IPv6 address (::ffff:10.0.0.5): PostgreSQL and
    PgBouncer match a client by the family it really connected with, so such an entry never matches.
    """
    text = _text(value)
    if text != text.strip() or any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError("holds spaces or control characters around or inside the address: write the address alone")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InputError("%r is not an IP address (hostnames are refused: a name resolves differently on each host, "
                         "and pg_hba.conf, PgBouncer and Redis's bind take addresses)" % (text,)) from None
    if address.version == 6 and address.scope_id:
        raise InputError("%s carries a zone id (%%%s): no URL, pg_hba.conf line or Redis bind line can hold it as "
                         "written; give an address that needs none" % (text, address.scope_id))
    if address.version == 6 and address.ipv4_mapped:
        raise InputError("%s is an IPv4-mapped IPv6 address: PostgreSQL and PgBouncer match a connection by the "
                         "family it really uses, so this entry would never match; write %s"
                         % (text, address.ipv4_mapped))
    return address


def network(value):
    """The ip_network of an address or CIDR (`10.0.0.5` is 10.0.0.5/32), or InputError."""
    text = _text(value)
    if "/" in text:
        address, _sep, prefix = text.partition("/")
        try:
            mapped = ipaddress.ip_address(address).ipv4_mapped if ":" in address else None
        except ValueError:
            mapped = None
        if not re.fullmatch(r"[0-9]{1,3}", prefix):
            raise InputError("%r is not a network in CIDR form: the prefix length must be a number" % (text,))
        if mapped is not None:
            raise InputError("%s is a range of IPv4-mapped IPv6 addresses: PostgreSQL and PgBouncer match a connection "
                             "by the family it really uses, so it would never match; write the IPv4 network %s/%d"
                             % (text, mapped, max(0, int(prefix) - 96)))
        ip(address)
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InputError("%r is not a network in CIDR form (%s)" % (text, exc)) from None
        return net
    return ipaddress.ip_network(ip(text))


def hba_address(value):
    """The address column of a pg_hba.conf line: a CIDR, /32 or /128 for a single address."""
    return str(network(value))


def redis_bind(entry):
    """Check one entry of a Redis `bind` line: an IP address, or Redis's `*` or `::*`, each optionally
    after `-` (Redis then skips an address it cannot bind). Raises InputError."""
    text = _text(entry)
    address = text[1:] if text.startswith("-") else text
    if address in ("*", "::*"):
        return
    if address == "":
        raise InputError("has an entry without an address: - only marks an address Redis may skip")
    ip(address)


def _listen_items(value):
    if isinstance(value, (list, tuple)):
        return [item if isinstance(item, str) else _text(item) for item in value]
    text = _text(value if value is not None else "")
    # pgbouncer.ini and postgresql.conf read "a, b": the spaces after commas are theirs to skip.
    return [item.strip(" ") for item in text.split(",")]


def _whole_reason(value, low, high):
    return "must be a whole number from %d to %d, not %s" % (low, high, _describe_number(value))


def _describe_number(value):
    number = whole(value)
    if number is not None:
        return "%d" % number
    if isinstance(value, str):
        return "text that is not a plain whole number (digits only: no spaces, decimal point, + sign or leading zero)"
    return _type_name(value)


def _bounds(kind):
    """(low, high) of a kind `int:LOW..HIGH`, or ValueError for a kind the roles got wrong."""
    match = re.fullmatch(r"int:(-?[0-9]+)\.\.(-?[0-9]+)", kind)
    if not match or int(match.group(1)) > int(match.group(2)):
        raise ValueError("unknown kind of check %r (write int:LOW..HIGH)" % (kind,))
    return int(match.group(1)), int(match.group(2))


def pg_size_base_units(text, base):
    """The number of `base` units (B, kB, 8kB or MB) PostgreSQL stores for a size such as `10GB`, or None.

    A number without a unit is already in the base unit. PostgreSQL rounds to the base unit; the caller
    refuses what rounds to nothing.
    """
    match = PG_SIZE_RE.fullmatch(text)
    if not match:
        return None
    number = int(match.group("number"))
    unit = match.group("unit")
    if number == -1:
        return None if unit else -1
    if unit is None:
        return number
    return number * PG_SIZE_UNITS[unit] / PG_BASE_UNITS[base]


def _pg_size(kind, value):
    """None or the reason a size is refused. Kinds: pg_size (base MB, -1 allowed: max_slot_wal_keep_size),
    pg_size:UNIT (no -1), pg_size:UNIT:-1."""
    parts = kind.split(":")
    base = parts[1] if len(parts) > 1 else "MB"
    minus_one = len(parts) == 1 or parts[2:] == ["-1"]
    if base not in PG_BASE_UNITS or len(parts) > 3 or (len(parts) == 3 and parts[2] != "-1"):
        raise ValueError("unknown kind of check %r (write pg_size, pg_size:UNIT or pg_size:UNIT:-1)" % (kind,))
    usage = ("must be %sa size PostgreSQL reads, such as 10GB or 512MB (a number, an optional space, then one of "
             "the case-sensitive units B, kB, MB, GB, TB)" % ("-1 or " if minus_one else ""))
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return usage
    amount = pg_size_base_units(str(value), base)
    if amount is None or (amount == -1 and not minus_one):
        return usage
    if 0 < amount < 1:
        return ("is less than 1 %s, the setting's unit: PostgreSQL would round it to 0, which means something else; "
                "give at least 1%s" % (base, base))
    if amount > INT_MAX:
        return ("is more than PostgreSQL can store: it keeps this setting as a whole number of %s in a C int, so "
                "at most %d%s (about %s)" % (base, INT_MAX, base, _human(INT_MAX * PG_BASE_UNITS[base])))
    return None


def _human(count):
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if count < 1024 or unit == "PB":
            return "%d%s" % (count, unit)
        count //= 1024
    return "%dB" % count  # pragma: no cover - the loop returns


def _reserved_name(name, what):
    """The reason `name` (already of the plain form) cannot name a PostgreSQL `what`, or None."""
    lowered = name.lower()
    if lowered in PG_HBA_KEYWORDS:
        return ("%s is a keyword of pg_hba.conf (%s), where this collection writes the name unquoted: there it "
                "would stand for a rule, not for the %s named so; choose another name"
                % (name, ", ".join(PG_HBA_KEYWORDS), what))
    if what == "user" and lowered in PG_RESERVED_ROLES:
        return "%s is a role name PostgreSQL reserves (CREATE ROLE refuses it): choose another name" % name
    if lowered.startswith("pg_"):
        return ("%s starts with pg_, the prefix PostgreSQL reserves for its own %s: choose a name without it"
                % (name, "roles" if what == "user" else "roles and schemas"))
    return None


def _port_list(kind, value, low):
    if not isinstance(value, (list, tuple)):
        return "must be a list of port numbers, not %s" % _type_name(value)
    most = int(kind.split(":")[1]) if ":" in kind else 65535
    if not 1 <= len(value) <= most:
        return "must list from 1 to %d ports, not %d" % (most, len(value))
    seen = set()
    for index, item in enumerate(value):
        reason = _port(item, low)
        if reason:
            return "item %d %s" % (index + 1, reason)
        number = whole(item)
        if number in seen:
            return "lists port %d twice: every instance needs its own port" % number
        seen.add(number)
    return None


def _port(value, low):
    number = whole(value)
    if number is None or not 1 <= number <= 65535:
        return "must be a port number from %d to 65535, not %s" % (low, _describe_number(value))
    if number < low:
        return ("is port %d, below %d: the service runs as an unprivileged user without CAP_NET_BIND_SERVICE (its "
                "unit grants no capability), so it cannot bind it; use a port from %d to 65535" % (number, low, low))
    return None


def _ws_url(value):
    usage = "must be empty or a URL such as wss://streaming.example.com (wss, ws, https or http; a host and an optional port)"
    if not isinstance(value, str) or any(c.isspace() or ord(c) < 32 or c in "\"'\\<>`" for c in value):
        return usage
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return usage
    if parts.scheme not in ("wss", "ws", "https", "http") or parts.query or parts.fragment or "#" in value or "?" in value:
        return usage
    if parts.username is not None or parts.password is not None:
        return "may not carry a user or password: Mastodon sends STREAMING_API_BASE_URL to every browser"
    if port == 0 or not URL_PATH_RE.fullmatch(parts.path):
        return usage
    netloc = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if re.fullmatch(r"\[[0-9A-Fa-f:.]+\]", netloc):
        try:
            ip(netloc[1:-1])
        except InputError as exc:
            return str(exc)
    elif not HOSTNAME_RE.fullmatch(netloc):
        return usage
    return None


def _host(value):
    """None when `value` is an IP address or a DNS name, else the reason."""
    if isinstance(value, str) and HOSTNAME_RE.fullmatch(value) and not re.fullmatch(r"[0-9.]+", value):
        return None
    try:
        ip(value)
    except InputError:
        return "must be an IP address or a DNS name (letters, digits and hyphens between dots)"
    return None


def _redis_url(value):
    """None or the reason a Redis address for an exporter is refused: redis:// or rediss:// with an IP address
    or localhost and an optional port and database number, or unix:// and an absolute socket path."""
    usage = ("must be redis://HOST:PORT, rediss://HOST:PORT (TLS) or unix:///path/to/socket, with an IP address or "
             "localhost as HOST, an optional /DB, and no user or password (give the password in password)")
    if not isinstance(value, str):
        return usage
    if value.startswith("unix://"):
        return None if PLAIN_PATH_RE.fullmatch(value[len("unix://"):]) else usage
    match = re.fullmatch(r"(?:redis|rediss)://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.]+)(?::(?P<port>[0-9]{1,5}))?"
                         r"(?:/(?P<db>[0-9]{1,5}))?", value)
    if not match:
        return usage
    host = match.group("host")
    if host != "localhost":
        try:
            ip(host[1:-1] if host.startswith("[") else host)
        except InputError as exc:
            if re.fullmatch(r"[0-9a-fA-F:.\[\]]+", host):
                return str(exc)
            return ("names a host by name: give its IP address or localhost (the exporter would resolve a name "
                    "again on every connection, and send the password wherever it points)")
        if host.startswith("[") != (":" in host):
            return usage
    if match.group("port") is not None and _port(match.group("port"), 1):
        return "names port %s: a port is a number from 1 to 65535, without leading zeros" % match.group("port")
    return None


def _check_one(kind, value):
    """None when `value` is a valid `kind`, else a short reason."""
    try:
        if kind == "ip":
            ip(value)
        elif kind == "loopback_ip":
            if not ip(value).is_loopback:
                return ("must be a loopback address (127.0.0.1 or ::1): what listens elsewhere answers anyone "
                        "who can reach this host")
        elif kind == "private_ip":
            address = ip(value)
            if address.is_unspecified:
                return ("is %s, every address of this host, public ones included: give the one private or loopback "
                        "address to listen on" % address)
            if address.is_global:
                return ("%s is a public address: what listens there has no authentication; give a private or "
                        "loopback address" % address)
        elif kind == "cidr":
            network(value)
        elif kind == "host":
            return _host(value)
        elif kind == "redis_url":
            return _redis_url(value)
        elif kind == "pg_host":
            text = _text(value)
            if text.startswith("/"):
                if not SOCKET_DIR_RE.fullmatch(text):
                    return "%r is not a socket directory libpq reads (letters, digits, _ . / - only)" % (text,)
            elif text != "localhost":
                ip(text)
        elif kind in ("ip_list", "cidr_list"):
            if not isinstance(value, (list, tuple)):
                return "must be a list of %s" % ("addresses" if kind == "ip_list" else "addresses or networks")
            for item in value:
                (ip if kind == "ip_list" else network)(item)
        elif kind == "redis_bind_list":
            if not isinstance(value, (list, tuple)) or not value:
                return "must be a list of at least one address, for example [127.0.0.1, -::1]"
            for item in value:
                redis_bind(item)
        elif kind == "pgbouncer_listen_addr":
            items = _listen_items(value)
            if not items or any(not item for item in items):
                return "must be IP addresses separated by commas, or *"
            if "*" in items and len(items) > 1:
                return "* already means every address; list addresses or *, not both"
            for item in items:
                if item != "*":
                    ip(item)
        elif kind == "listen_addresses":
            items = _listen_items(value)
            if not items or any(not item for item in items):
                return "must be a list of addresses, localhost or *"
            for item in items:
                if item not in ("*", "localhost"):
                    ip(item)
        elif kind == "name_list":
            if not isinstance(value, (list, tuple)):
                return "must be a list of names"
            bad = [str(v) for v in value if not isinstance(v, str) or not PG_NAME_RE.fullmatch(v)]
            if bad:
                return ("%s: each name must be 1 to 63 lower-case letters, digits or _, starting with a letter or _"
                        % ", ".join(repr(b) for b in bad))
            for item in value:
                reason = _reserved_name(item, "user")
                if reason:
                    return reason
        elif kind == "name":
            if not isinstance(value, str) or not PG_NAME_RE.fullmatch(value):
                return ("must be 1 to 63 lower-case letters, digits or _, starting with a letter or _ "
                        "(it is written unquoted into pg_hba.conf, SQL and pgbouncer.ini)")
            return _reserved_name(value, "user")
        elif kind == "dbname":
            if not isinstance(value, str) or not PG_DBNAME_RE.fullmatch(value):
                return "must be 1 to 63 letters, digits, _, . or -"
            return _reserved_name(value, "database")
        elif kind == "instance_name":
            if not isinstance(value, str) or not INSTANCE_NAME_RE.fullmatch(value):
                return ("must be 1 to 32 letters, digits, _ or -, starting with a letter or digit (it names a systemd "
                        "instance and its files)")
        elif kind == "pg_size" or kind.startswith("pg_size:"):
            return _pg_size(kind, value)
        elif kind == "port":
            return _port(value, 1)
        elif kind == "unprivileged_port":
            return _port(value, FIRST_UNPRIVILEGED_PORT)
        elif kind == "port_list" or kind.startswith("port_list:"):
            return _port_list(kind, value, 1)
        elif kind == "unprivileged_port_list" or kind.startswith("unprivileged_port_list:"):
            return _port_list(kind, value, FIRST_UNPRIVILEGED_PORT)
        elif kind.startswith("int>="):
            floor = int(kind[len("int>="):])
            number = whole(value)
            if number is None or number < floor:
                return "must be a whole number of at least %d, not %s" % (floor, _describe_number(value))
            if number > INT_MAX:
                return ("must be at most %d, the largest number PostgreSQL and PgBouncer store in a setting, not %d"
                        % (INT_MAX, number))
        elif kind.startswith("int:"):
            low, high = _bounds(kind)
            number = whole(value)
            if number is None or not low <= number <= high:
                return _whole_reason(value, low, high)
        elif kind == "ws_url":
            if value == "":
                return None
            return _ws_url(value)
        elif kind == "plain_path":
            if not isinstance(value, str) or not PLAIN_PATH_RE.fullmatch(value) or "/../" in value + "/":
                return ("must be an absolute path without .. components, of letters, digits and _ . @ + - / only (it "
                        "is written into a unit file, where spaces, quotes, % and line breaks mean something else)")
        elif kind == "settings":
            if not isinstance(value, dict):
                return "must be a mapping {setting: value}"
            for key, item in value.items():
                if not isinstance(key, str) or not SETTING_KEY_RE.fullmatch(key):
                    return ("setting name %r must be lower-case letters, digits and _ (no spaces), as the config "
                            "file reads it" % (key,))
                if item is None or isinstance(item, (dict, list, tuple)) or any(c in str(item) for c in "\r\n\x00"):
                    return "the value of %s must be one line of text or a number" % key
        elif kind == "one_line":
            if value is None or isinstance(value, (dict, list, tuple)) or any(c in str(value) for c in "\r\n\x00"):
                return "must be one line of text"
            if any(c in str(value) for c in "\"'\\"):
                return "may not contain quotes or backslashes (systemd and the unit file would read them differently)"
        elif kind == "password":
            if not isinstance(value, str) or value == "":
                return "must be set (for example from Ansible Vault)"
            if any(c in value for c in "\r\n\x00"):
                return "may not contain line breaks or NUL bytes"
        else:
            raise ValueError("unknown kind of check %r" % (kind,))
    except InputError as exc:
        return str(exc)
    return None


def whole(value):
    """An int from an int or a plain decimal string (Jinja may yield either); None otherwise.

    Refused: booleans (YAML's true would be 1), floats (5.0), and strings with spaces, a + sign, leading
    zeros or anything but ASCII digits: a role writes the value it checked, not the number read from it.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and WHOLE_RE.fullmatch(value):
        return int(value)
    return None


def problems(checks):
    """Every problem of `checks`, a list of [variable, kind, value], as sentences naming the variable.

    Kinds:
    - addresses: ip, cidr, ip_list, cidr_list, loopback_ip, private_ip (not public, not every address),
      host (an address or a DNS name), pg_host, listen_addresses (PostgreSQL), pgbouncer_listen_addr,
      redis_bind_list, redis_url (an exporter's Redis: redis://, rediss:// or unix://, no password);
    - PostgreSQL: name, name_list (users), dbname, pg_size (base unit MB, -1 allowed), pg_size:UNIT and
      pg_size:UNIT:-1 (UNIT B, kB, 8kB or MB);
    - numbers: port, unprivileged_port (1024 and up), port_list[:MAXCOUNT], unprivileged_port_list[:MAXCOUNT],
      int:LOW..HIGH, int>=N (N to INT_MAX);
    - text: instance_name, plain_path, ws_url (empty allowed), settings ({key: one-line value}), one_line
      (no line breaks or quotes), password (never quoted back).
    """
    found = []
    for variable, kind, value in checks:
        reason = _check_one(kind, value)
        if reason:
            found.append("%s: %s." % (variable, reason))
    return found


def port_clashes(ports):
    """Problems for TCP ports used twice on one host. `ports` is a list of [owner variable, port, host]."""
    seen = {}
    found = []
    for variable, port, host in ports:
        number = whole(port)
        if number is None:
            continue
        key = (host, number)
        if key in seen:
            found.append("%s and %s both use port %d on %s: give each its own port." % (seen[key], variable, number, host))
        else:
            seen[key] = variable
    return found
