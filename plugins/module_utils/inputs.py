# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of operator input that several roles share, as pure functions.

Every role validates before it changes anything. The checks here are the ones whose rules come from
PostgreSQL, PgBouncer or TCP rather than from one role: addresses that end up in pg_hba.conf or
listen_addr, PostgreSQL names and sizes, ports. Each problem is a sentence that names the variable,
so the operator knows what to fix; a value is quoted only when it cannot be a secret.

`problems(checks)` takes a list of [variable, kind, value] and returns every problem at once.
"""

from __future__ import annotations

import ipaddress
import re


class InputError(ValueError):
    """A value no check accepts; the message names what was expected."""


# PostgreSQL's memory and size units are case-sensitive (guc.c): B, kB, MB, GB, TB.
PG_SIZE_RE = re.compile(r"^(?:-1|[0-9]+\s*(?:B|kB|MB|GB|TB)?)$")
# Names this collection writes unquoted into pg_hba.conf, SQL and pgbouncer.ini: PostgreSQL's plain
# identifiers in lower case, at most 63 bytes (NAMEDATALEN - 1).
PG_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Database names may also hold '-' and '.', as Mastodon's own defaults do not but operators' may.
PG_DBNAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
# Keys of free-form settings written as `key = value` lines (pgbouncer.ini, postgresql.conf).
SETTING_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A Unix socket directory as libpq and PgBouncer read a host: absolute, no spaces, quotes or '='.
SOCKET_DIR_RE = re.compile(r"^/[A-Za-z0-9_./-]*$")


def ip(value):
    """The ip_address of `value`, or InputError (hostnames included: they are not resolved here)."""
    text = str(value).strip() if value is not None else ""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InputError("%r is not an IP address (hostnames are refused: pg_hba.conf and PgBouncer match "
                         "addresses, and a name resolves differently on each host)" % (text,)) from None


def network(value):
    """The ip_network of an address or CIDR (`10.0.0.5` is 10.0.0.5/32), or InputError."""
    text = str(value).strip() if value is not None else ""
    if "/" in text:
        try:
            return ipaddress.ip_network(text, strict=True)
        except ValueError as exc:
            raise InputError("%r is not a network in CIDR form (%s)" % (text, exc)) from None
    return ipaddress.ip_network(ip(text))


def hba_address(value):
    """The address column of a pg_hba.conf line: a CIDR, /32 or /128 for a single address."""
    return str(network(value))


def _listen_items(value):
    if isinstance(value, (list, tuple)):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in str(value if value is not None else "").split(",")]
    return items


def _check_one(kind, value):
    """None when `value` is a valid `kind`, else a short reason."""
    try:
        if kind == "ip":
            ip(value)
        elif kind == "cidr":
            network(value)
        elif kind == "pg_host":
            text = str(value).strip() if value is not None else ""
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
        elif kind == "name":
            if not isinstance(value, str) or not PG_NAME_RE.fullmatch(value):
                return ("must be 1 to 63 lower-case letters, digits or _, starting with a letter or _ "
                        "(it is written unquoted into pg_hba.conf, SQL and pgbouncer.ini)")
        elif kind == "dbname":
            if not isinstance(value, str) or not PG_DBNAME_RE.fullmatch(value):
                return "must be 1 to 63 letters, digits, _, . or -"
        elif kind == "pg_size":
            if isinstance(value, bool) or not PG_SIZE_RE.fullmatch(str(value).strip()):
                return ("must be -1 or a size PostgreSQL reads, such as 10GB or 512MB (units are case-sensitive: "
                        "B, kB, MB, GB, TB)")
        elif kind == "port":
            number = whole(value)
            if number is None or not 1 <= number <= 65535:
                return "must be a port number from 1 to 65535"
        elif kind.startswith("int>="):
            number = whole(value)
            floor = int(kind[len("int>="):])
            if number is None or number < floor:
                return "must be a whole number of at least %d" % floor
        elif kind == "settings":
            if not isinstance(value, dict):
                return "must be a mapping {setting: value}"
            for key, item in value.items():
                if not isinstance(key, str) or not SETTING_KEY_RE.fullmatch(key):
                    return ("setting name %r must be lower-case letters, digits and _ (no spaces), as the config "
                            "file reads it" % (key,))
                if isinstance(item, (dict, list)) or any(c in str(item) for c in "\r\n\x00"):
                    return "the value of %s must be one line of text or a number" % key
        elif kind == "one_line":
            if value is None or any(c in str(value) for c in "\r\n\x00"):
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
    """An int from an int or a decimal string (Jinja may yield either); None otherwise (booleans too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    return None


def problems(checks):
    """Every problem of `checks`, a list of [variable, kind, value], as sentences naming the variable.

    Kinds: ip, cidr, ip_list, cidr_list, listen_addresses (PostgreSQL), pgbouncer_listen_addr, name, name_list,
    dbname, pg_size, port, int>=N, settings ({key: one-line value}), one_line (no line breaks or quotes),
    password (never quoted back).
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
