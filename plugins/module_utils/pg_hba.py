# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A named block of lines in pg_hba.conf (or pg_ident.conf), as pure functions.

PostgreSQL reads pg_hba.conf top to bottom and the first matching line wins, so a block goes at the
top of the file; pg_ident.conf's blocks go there too. Its markers are `# BEGIN fediops.mastodon NAME` and `# END fediops.mastodon NAME`,
the ones ansible.builtin.blockinfile wrote before, so a host configured by an older release keeps one
block.
"""

from __future__ import annotations

import re

# Matched with fullmatch: "$" would also match before a final line break (a name ending in one would add
# a new block on every run).
NAME_RE = re.compile(r"[a-z0-9_]{1,40}")
# A pg_hba line this collection writes: a connection type and four or five columns, no quotes or
# line breaks hidden in a value (those are refused before they get here).
LINE_RE = re.compile(r"(local|host|hostssl|hostnossl)([ \t]+[^\s\"'#]+){3,4}")
# A pg_ident.conf line: map name, system user, PostgreSQL user (plain names, no regular expression).
IDENT_LINE_RE = re.compile(r"[a-z0-9_]+[ \t]+[A-Za-z0-9_.-]+[ \t]+[a-z0-9_]+")


class PgHbaError(ValueError):
    """A block that cannot be written."""


def markers(name):
    if not NAME_RE.fullmatch(name if isinstance(name, str) else ""):
        raise PgHbaError("block name %r must be 1 to 40 lower-case letters, digits or _" % (name,))
    return "# BEGIN fediops.mastodon %s" % name, "# END fediops.mastodon %s" % name


def check_lines(lines, kind="hba"):
    """Problems with the lines of a block (empty when each is a plain pg_hba rule, or with kind `ident` a
    plain pg_ident map line, or a comment)."""
    pattern, what = (IDENT_LINE_RE, "pg_ident map line") if kind == "ident" else (LINE_RE, "pg_hba rule")
    problems = []
    for number, line in enumerate(lines, 1):
        text = str(line)
        if "\n" in text or "\r" in text:
            problems.append("line %d holds a line break" % number)
        elif text.strip() and not text.lstrip().startswith("#") and not pattern.fullmatch(text.strip(" \t")):
            problems.append("line %d is not a %s this collection writes: %r" % (number, what, text))
    return problems


def replace_block(text, name, lines, present=True, kind="hba"):
    """Return `text` with the block `name` set to `lines` (or removed when not `present`).

    A new block goes at the top of the file; an existing one stays where it is.
    """
    begin, end = markers(name)
    problems = check_lines(lines, kind) if present else []
    if problems:
        raise PgHbaError("; ".join(problems))
    old = text.splitlines(True)
    start = next((i for i, line in enumerate(old) if line.rstrip("\r\n") == begin), None)
    stop = None
    if start is not None:
        stop = next((i for i in range(start + 1, len(old)) if old[i].rstrip("\r\n") == end), None)
        if stop is None:
            raise PgHbaError("the file has %r but no %r after it; fix the file by hand first" % (begin, end))
    block = [begin + "\n"] + ["%s\n" % str(line).rstrip() for line in lines] + [end + "\n"] if present else []
    if start is None:
        if not present:
            return text
        return "".join(block + old)
    return "".join(old[:start] + block + old[stop + 1:])
