# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one way to run SQL: psql, with values passed as psql variables, as pure functions.

Why psql and not community.postgresql's modules: those need a Python driver (psycopg) on the target, and
a preview (--check) or the plan check of playbooks/scale.yml must read PostgreSQL before anything is
installed or changed. psql ships with every PostgreSQL server package.

Values never enter the SQL text or argv: the script fed on stdin starts with one ``\\set`` line per value,
and the query names them as ``:'name'`` (a quoted literal) or ``:"name"`` (a quoted identifier), which psql
quotes with libpq's own PQescapeLiteral and PQescapeIdentifier. Output is unaligned with a unit separator
between fields and NUL after each row, so a value holding a newline cannot split a row.
"""

from __future__ import annotations

import re

FIELD_SEP = "\x1f"
ROW_SEP = "\x00"
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# psql's own variables are all upper case (ON_ERROR_STOP, ROW_COUNT, USER, ...) and psql sets some of them
# itself: a parameter needs a lower-case letter, so it can never be one of them.
# A read runs in a read-only transaction: a query that would write fails instead of writing.
READ_ONLY = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n"


class QueryError(ValueError):
    """A parameter psql cannot carry."""


def psql_set_value(value):
    """`value` as the quoted argument of a psql meta-command: backslash escapes inside single quotes."""
    text = str(value)
    if "\x00" in text:
        raise QueryError("a value holds a NUL byte, which PostgreSQL text cannot hold")
    return "'%s'" % (text.replace("\\", "\\\\").replace("'", "\\'")
                     .replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))


def script(query, params=None, read_only=True):
    """The stdin for psql: one `\\set` per parameter (sorted), then the query."""
    lines = []
    for name in sorted(params or {}):
        if not NAME_RE.fullmatch(name) or name == name.upper():
            raise QueryError("parameter name %r: use letters, digits and _, with a lower-case letter "
                             "(psql's own variables are upper case)" % name)
        lines.append("\\set %s %s\n" % (name, psql_set_value(params[name])))
    body = query.strip()
    if not body.endswith(";"):
        body += ";"
    return "".join(lines) + (READ_ONLY if read_only else "") + body + "\n"


def conninfo(db="postgres", port=5432, host=None, user=None):
    """A libpq connection string (no password: that goes through the environment)."""
    def quote(value):
        return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")

    pairs = [("dbname", db), ("port", port)]
    if host:
        pairs.append(("host", host))
    if user:
        pairs.append(("user", user))
    return " ".join("%s=%s" % (key, quote(value)) for key, value in pairs)


def argv(psql, conn, os_user=None, terse=False, header=False):
    """psql's command line, run as `os_user` (peer authentication) through runuser when given. `terse`
    keeps PostgreSQL's error messages to one line, without the statement (which may hold a secret).
    `header` makes the column names the first row, for PgBouncer's SHOW commands, whose columns
    differ between versions."""
    # -w: never prompt for a password (with a terminal, a missing .pgpass entry would wait forever).
    cmd = [psql, "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", FIELD_SEP, "-0", "-d", conn]
    if header:
        cmd[cmd.index("-t")] = "--pset=footer=off"
    if terse:
        cmd[-2:-2] = ["-v", "VERBOSITY=terse"]
    return (["runuser", "-u", os_user, "--"] + cmd) if os_user else cmd


def parse_rows(out):
    """psql's output as a list of rows, each a list of strings (NULL reads as the empty string)."""
    rows = out.split(ROW_SEP)
    if rows[-1] in ("", "\n"):
        rows.pop()
    return [row.split(FIELD_SEP) for row in rows]
