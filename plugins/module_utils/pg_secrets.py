# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL password secrets (md5 and SCRAM-SHA-256) and PgBouncer's userlist.txt, as pure functions.

The one place in the collection that makes, parses and verifies secrets: the pgbouncer_userlist
module and the pg_md5 / pg_scram_sha256 filters import it.

A SCRAM secret is written exactly in the form PostgreSQL stores in pg_authid
(``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``) because PgBouncer can only log in
to PostgreSQL with a SCRAM secret when its copy is byte-identical to the server's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stringprep
import unicodedata

# Matched with fullmatch: "$" would also match before a final line break.
MD5_RE = re.compile(r"md5[0-9a-f]{32}")
SCRAM_RE = re.compile(
    r"SCRAM-SHA-256\$(?P<iterations>[0-9]+):(?P<salt>[A-Za-z0-9+/]+={0,2})"
    r"\$(?P<stored_key>[A-Za-z0-9+/]+={0,2}):(?P<server_key>[A-Za-z0-9+/]+={0,2})"
)
# PostgreSQL's defaults (scram_iterations, SCRAM_DEFAULT_SALT_LEN).
SCRAM_ITERATIONS = 4096
SCRAM_SALT_LEN = 16
# PgBouncer's MAX_USERNAME and MAX_PASSWORD: the quoted field must be shorter than these.
MAX_NAME_BYTES = 128
MAX_SECRET_BYTES = 2048
AUTH_TYPES = ("md5", "scram-sha-256")


class SecretError(ValueError):
    """A name, password or secret that PostgreSQL or PgBouncer cannot use."""


def _quoted_len(value):
    return len(value.encode("utf-8")) + value.count('"')


def validate_name(name):
    """Raise SecretError unless PgBouncer's userlist.txt parser can read `name` back."""
    if not isinstance(name, str) or name == "":
        raise SecretError("a user name must be a non-empty string")
    for char in ("\x00", "\n", "\r"):
        if char in name:
            raise SecretError("user name %r contains %r, which userlist.txt cannot hold" % (name, char))
    if _quoted_len(name) >= MAX_NAME_BYTES:
        raise SecretError(
            "user name %r is %d bytes once quoted; PgBouncer reads at most %d: use a shorter name"
            % (name[:20] + "...", _quoted_len(name), MAX_NAME_BYTES - 1))


def validate_password(password):
    """Raise SecretError for passwords that cannot be hashed and used (the message never shows the password)."""
    if not isinstance(password, str) or password == "":
        raise SecretError("the password is empty: PostgreSQL refuses logins with an empty password")
    if "\x00" in password:
        raise SecretError("the password contains a NUL byte, which libpq cannot send")
    if "\n" in password or "\r" in password:
        raise SecretError("the password contains a line break; Mastodon's .env.production and psql cannot carry it reliably")
    if secret_type(password) != "plain":
        raise SecretError(
            "the password looks like an md5 or SCRAM secret; PostgreSQL would store it as a hash "
            "and nobody could log in with it: give the plaintext password")


def md5_secret(name, password):
    """PostgreSQL's md5 secret: "md5" + md5(password + name)."""
    validate_name(name)
    validate_password(password)
    return "md5" + hashlib.md5((password + name).encode("utf-8")).hexdigest()


# RFC 3454's tables as PostgreSQL's src/common/saslprep.c lists them (Python's stringprep holds the same
# Unicode 3.2 tables). Prohibited output: C.1.2, C.2.1, C.2.2, C.3 to C.9, and A.1 (unassigned in 3.2).
_PROHIBITED = (
    stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22, stringprep.in_table_c3,
    stringprep.in_table_c4, stringprep.in_table_c5, stringprep.in_table_c6, stringprep.in_table_c7,
    stringprep.in_table_c8, stringprep.in_table_c9, stringprep.in_table_a1,
)


def saslprep(password):
    """Prepare a password exactly as PostgreSQL's pg_saslprep() does (RFC 4013, src/common/saslprep.c).

    PostgreSQL (server and libpq alike) falls back to the raw password when pg_saslprep() refuses it
    (prohibited characters, or nothing left after mapping), so this never raises: it returns what
    PostgreSQL hashes. Its order, which a textbook SASLprep does not share, is followed step by step:

    1. an all-ASCII password is used as it is;
    2. map: C.1.2 (non-ASCII spaces) to SPACE first, else B.1 ("commonly mapped to nothing") removed. U+200B
       is in both tables, so it becomes a space, not nothing;
    3. nothing left: refused (the raw password is used);
    4. NFKC-normalize the mapped string;
    5. prohibited characters and the bidirectional rules are checked on the *mapped* string, before
       normalization, as saslprep.c does (it loops over input_chars, not output_chars);
    6. the normalized string is the result.
    """
    if all(ord(c) < 0x80 for c in password):
        return password
    mapped = "".join(" " if stringprep.in_table_c12(c) else "" if stringprep.in_table_b1(c) else c
                     for c in password)
    if not mapped:
        return password
    # PostgreSQL normalizes with its current Unicode tables; every character that gets this far was assigned in
    # Unicode 3.2 (A.1 is refused below), and NFKC of an assigned character is stable across versions.
    normalized = unicodedata.normalize("NFKC", mapped)
    if any(any(table(c) for table in _PROHIBITED) for c in mapped):
        return password
    if any(stringprep.in_table_d1(c) for c in mapped):
        if any(stringprep.in_table_d2(c) for c in mapped) or not (
                stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            return password
    return normalized


def _scram_keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def _b64(raw):
    return base64.b64encode(raw).decode("ascii")


def scram_secret(password, salt=None, iterations=SCRAM_ITERATIONS):
    """A SCRAM-SHA-256 secret as PostgreSQL stores it. `salt` is bytes (random when omitted)."""
    validate_password(password)
    if not isinstance(iterations, int) or iterations < 1:
        raise SecretError("SCRAM iterations must be a positive integer, got %r" % (iterations,))
    if salt is None:
        salt = os.urandom(SCRAM_SALT_LEN)
    if not salt:
        raise SecretError("the SCRAM salt must not be empty")
    stored_key, server_key = _scram_keys(password, salt, iterations)
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, _b64(salt), _b64(stored_key), _b64(server_key))


def secret_type(secret):
    """'md5', 'scram-sha-256' or 'plain' (what PostgreSQL and PgBouncer would take it for)."""
    if MD5_RE.fullmatch(secret or ""):
        return "md5"
    if SCRAM_RE.fullmatch(secret or ""):
        return "scram-sha-256"
    return "plain"


def parse_scram(secret):
    """Return {iterations, salt, stored_key, server_key} (bytes) of a SCRAM secret, or raise SecretError."""
    match = SCRAM_RE.fullmatch(secret or "")
    if not match:
        raise SecretError("not a SCRAM-SHA-256 secret")
    try:
        parts = {k: base64.b64decode(match.group(k), validate=True)
                 for k in ("salt", "stored_key", "server_key")}
    except (ValueError, TypeError) as exc:
        raise SecretError("SCRAM secret has invalid base64: %s" % exc)
    if len(parts["stored_key"]) != 32 or len(parts["server_key"]) != 32 or not parts["salt"]:
        raise SecretError("SCRAM secret has keys of the wrong length")
    parts["iterations"] = int(match.group("iterations"))
    if parts["iterations"] < 1:
        raise SecretError("SCRAM secret has zero iterations")
    return parts


def verify(name, password, secret):
    """True when `secret` (md5, SCRAM or plaintext) lets `name` log in with `password`."""
    kind = secret_type(secret)
    if kind == "md5":
        expected = "md5" + hashlib.md5((password + name).encode("utf-8")).hexdigest()
        return hmac.compare_digest(expected, secret)
    if kind == "scram-sha-256":
        try:
            parts = parse_scram(secret)
        except SecretError:
            return False
        stored_key, server_key = _scram_keys(password, parts["salt"], parts["iterations"])
        return (hmac.compare_digest(stored_key, parts["stored_key"])
                and hmac.compare_digest(server_key, parts["server_key"]))
    return hmac.compare_digest(password.encode("utf-8"), (secret or "").encode("utf-8"))


def make_secret(name, password, auth_type, existing=None):
    """The secret to store for `auth_type`: `existing` when it is of that type and verifies, else a new one.

    Keeping a verifying secret is what makes SCRAM idempotent (no new salt on every run).
    """
    validate_name(name)
    validate_password(password)
    if auth_type not in AUTH_TYPES:
        raise SecretError("auth_type must be one of %s, got %r" % (", ".join(AUTH_TYPES), auth_type))
    if existing and secret_type(existing) == auth_type and verify(name, password, existing):
        return existing
    if auth_type == "md5":
        return md5_secret(name, password)
    return scram_secret(password)


# userlist.txt ----------------------------------------------------------------------------------

def quote(value):
    """Quote a field the way PgBouncer's auth_file parser reads it back: `"` doubled inside quotes."""
    return '"%s"' % value.replace('"', '""')


def format_entry(name, secret):
    validate_name(name)
    if "\n" in secret or "\r" in secret or "\x00" in secret:
        raise SecretError("the secret for %r contains a line break or NUL" % name)
    if _quoted_len(secret) >= MAX_SECRET_BYTES:
        raise SecretError("the secret for %r is longer than PgBouncer's %d bytes" % (name, MAX_SECRET_BYTES - 1))
    return "%s %s" % (quote(name), quote(secret))


def _read_quoted(line, pos):
    """Read one quoted field from `line` at `pos` ('"' expected). Returns (value, next_pos) or None."""
    if pos >= len(line) or line[pos] != '"':
        return None
    out, i = [], pos + 1
    while i < len(line):
        if line[i] == '"':
            if i + 1 < len(line) and line[i + 1] == '"':
                out.append('"')
                i += 2
                continue
            return "".join(out), i + 1
        out.append(line[i])
        i += 1
    return None


def parse_line(line):
    """('blank'|'comment'|'user'|'broken', name, secret) for one userlist.txt line."""
    stripped = line.lstrip(" \t\f\v")
    if stripped == "":
        return ("blank", None, None)
    if stripped.startswith(";"):
        return ("comment", None, None)
    first = _read_quoted(stripped, 0)
    if first is None:
        return ("broken", None, None)
    name, pos = first
    while pos < len(stripped) and stripped[pos] != '"':
        pos += 1
    second = _read_quoted(stripped, pos)
    if second is None:
        return ("broken", None, None)
    return ("user", name, second[0])


def parse_userlist(text):
    """Return [(kind, name, secret, raw_line)] for every line of a userlist.txt."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [parse_line(line) + (line,) for line in lines]


def update_userlist(text, users, auth_type, exclusive=False):
    """Apply `users` ([{name, password, state, secret?}]) to a userlist.txt text.

    Returns (new_text, added, changed, removed). Entries that verify against their password and are
    of `auth_type` are kept byte for byte. A `secret` given for a user is written as is (it must
    verify against the password). Unmanaged lines stay unless `exclusive`. Raises SecretError
    before anything is produced when any user is invalid.
    """
    if auth_type not in AUTH_TYPES:
        raise SecretError("auth_type must be one of %s, got %r" % (", ".join(AUTH_TYPES), auth_type))
    wanted = {}
    for user in users:
        name = user.get("name")
        validate_name(name)
        if name in wanted:
            raise SecretError("user %r is listed twice" % name)
        state = user.get("state") or "present"
        if state not in ("present", "absent"):
            raise SecretError("state of %r must be present or absent, got %r" % (name, state))
        if state == "present":
            password = user.get("password")
            validate_password(password)
            secret = user.get("secret")
            if secret is not None:
                if secret_type(secret) != auth_type or not verify(name, password, secret):
                    raise SecretError("the secret given for %r is not a %s secret of its password" % (name, auth_type))
        wanted[name] = user

    entries = parse_userlist(text)
    out, seen = [], set()
    added, changed, removed = [], [], []
    for kind, name, secret, raw in entries:
        if kind != "user" or (name not in wanted and not exclusive):
            if kind in ("user", "broken") and exclusive:
                continue
            out.append(raw)
            continue
        if name not in wanted:
            removed.append(name)
            continue
        if name in seen:
            # PgBouncer lets a later duplicate override the first entry, so it must go.
            changed.append(name)
            continue
        seen.add(name)
        user = wanted[name]
        if (user.get("state") or "present") == "absent":
            removed.append(name)
            continue
        new_secret = user.get("secret") or make_secret(name, user["password"], auth_type, existing=secret)
        line = format_entry(name, new_secret)
        if new_secret != secret or line != raw:
            changed.append(name)
        out.append(line)
    for name, user in wanted.items():
        if name in seen or (user.get("state") or "present") == "absent":
            continue
        out.append(format_entry(name, user.get("secret") or make_secret(name, user["password"], auth_type)))
        added.append(name)
    if not (added or changed or removed) and len(out) == len(entries):
        return text, [], [], []
    new_text = "\n".join(out) + ("\n" if out else "")
    return new_text, sorted(added), sorted(set(changed)), sorted(set(removed))


def mask_userlist(text):
    """userlist.txt with every secret replaced: safe for diffs."""
    out = []
    for kind, name, _secret, raw in parse_userlist(text):
        out.append("%s %s" % (quote(name), quote("********")) if kind == "user" else
                   ("<unreadable line>" if kind == "broken" else raw))
    return "\n".join(out) + ("\n" if out else "")
