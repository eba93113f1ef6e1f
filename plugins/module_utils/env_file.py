# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""KEY=VALUE files (Mastodon's .env.production), as pure functions.

Mastodon reads .env.production with the dotenv gem (and the streaming server with Node's dotenv).
Only the lines for the keys being set are rewritten; comments, blank lines, order and every other
key stay exactly as they were, so an operator's hand edits survive.
"""

from __future__ import annotations

import re

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
LINE_RE = re.compile(r"(?P<lead>\s*(?:export\s+)?)(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=(?P<value>.*)")
# Left unquoted, these characters mean the same to dotenv (Ruby and Node) as to a shell reader.
PLAIN_RE = re.compile(r"[A-Za-z0-9_./:@%+,=-]*")
MASK = "********"
# The collection's one rule for "this value must never be shown", wherever a KEY=VALUE pair is written or
# reported: .env.production and its diff, a unit's Environment=, the app_env role's no_log split. A value is
# secret when its key's name says so...
SECRET_NAME_RE = re.compile(r"PASS|SECRET|_KEY|TOKEN|PRIVATE|CREDENTIAL", re.I)
# ...or when the value itself carries a credential, whatever its key: a URL with user:password@ (the
# password may hold anything but @, encoded or not), an HTTP Authorization header
# (OTEL_EXPORTER_OTLP_HEADERS=Authorization=Basic ...), a Bearer or Basic token, a password in a query.
CREDENTIAL_VALUE_RE = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^@\s]*@"
    r"|\bauthorization\s*[=:]"
    r"|\b(?:bearer|basic)\s+[A-Za-z0-9._~+/-]{8,}"
    r"|[?&;](?:password|passwd|pwd|pass|secret|token|access_token|api_key|apikey|key|auth)=",
    re.I)
# user:password@ inside a URL value (DATABASE_URL, CACHE_REDIS_URL, ...): the password alone, to censor
# it wherever else it shows up.
URL_PASSWORD_RE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<password>[^@\s]+)(?=@)")


class EnvFileError(ValueError):
    """A key or value that cannot be written safely."""


def looks_like_credential(value):
    """True when `value` carries a credential whatever the key it is stored under."""
    return value is not None and bool(CREDENTIAL_VALUE_RE.search(str(value)))


def is_secret(key, secret_keys=(), value=None):
    """True when the value of `key` must never be shown: the key is named in `secret_keys`, its name
    looks secret, or `value` (when given) looks like a credential."""
    return key in secret_keys or bool(SECRET_NAME_RE.search(str(key))) or looks_like_credential(value)


def secret_keys(values, extra=(), urls=False):
    """The keys of `values` ({KEY: value}) whose values must never be shown, sorted.

    With `urls`, every key ending in _URL counts too: a writer that logs its other arguments (the app_env
    role) treats every URL as secret, since a password may sit in a form no rule here recognises.
    """
    return sorted(key for key, value in (values or {}).items()
                  if is_secret(str(key), extra, value) or (urls and str(key).upper().endswith("_URL")))


def secret_parts(value):
    """The strings to censor wherever they show up for a secret `value`: the value and any URL password in it."""
    text = str(value)
    return [text] + [match.group("password") for match in URL_PASSWORD_RE.finditer(text)]


def parse_value(raw):
    """Return the value dotenv would read from the text right of `=`."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        inner = raw[1:-1]
        out, i = [], 0
        while i < len(inner):
            ch = inner[i]
            if ch == "\\" and i + 1 < len(inner):
                nxt = inner[i + 1]
                out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            out.append(ch)
            i += 1
        return "".join(out)
    # An unquoted value ends at an inline comment (" #").
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


# How the two readers of .env.production see the text right of `=` on one line. Mastodon's Rails
# processes use the dotenv gem; its streaming server uses npm dotenv (major 16). They disagree:
# npm dotenv keeps backslashes inside double quotes (it only expands \n and \r) and never expands
# $VAR, while the gem unescapes \" \\ \$ and expands $VAR and $(command) in double-quoted and
# unquoted values. Both take single-quoted values literally and end unquoted values at `#`.
RUBY_VALUE_RE = re.compile(r"""\A('(?:\\'|[^'])*'|"(?:\\"|[^"])*"|[^#\r\n]+)?\s*(?:#.*)?\Z""", re.S)
NODE_VALUE_RE = re.compile(r"""\A(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?\Z""",
                           re.S)


def read_as_ruby_dotenv(raw):
    """The value the dotenv gem reads from `raw`, or None where it depends on the environment."""
    match = RUBY_VALUE_RE.match(raw.lstrip())
    if not match:
        return None
    value = (match.group(1) or "").strip()
    quote = value[0] if len(value) >= 2 and value[0] in "'\"" and value[-1] == value[0] else ""
    if quote:
        value = value[1:-1]
    if quote == "'":
        return value
    if quote == '"':
        value = value.replace("\\n", "\n").replace("\\r", "\r")
        value = re.sub(r"\\([^$])", r"\1", value)
    if "$" in value:
        # $VAR and $(command) are expanded from the environment; \$ stands for a literal $.
        return None
    return value


def read_as_node_dotenv(raw):
    """The value npm dotenv (16) reads from `raw`."""
    match = NODE_VALUE_RE.match(raw.lstrip())
    if not match:
        return None
    value = (match.group(1) or "").strip()
    quote = value[0] if value else ""
    if len(value) >= 2 and quote in "'\"`" and value[-1] == quote:
        value = value[1:-1]
    if quote == '"':
        value = value.replace("\\n", "\n").replace("\\r", "\r")
    return value


def _candidates(value):
    """Renderings in order of preference; format_value takes the first both readers agree on."""
    if "'" not in value:
        yield "'%s'" % value
    yield '"%s"' % value.replace("\n", "\\n").replace("\r", "\\r")
    yield value
    # Both readers fail to match a single-quoted value with a ' inside, fall back to reading it
    # unquoted, and then strip the outer quotes: the only form for a ' beside $, " or \.
    yield "'%s'" % value


def read_alike(raw):
    """The value both readers take from `raw`, or None when they read it differently."""
    ruby = read_as_ruby_dotenv(raw)
    return ruby if ruby is not None and ruby == read_as_node_dotenv(raw) else None


def format_value(value, key="value"):
    """Render `value` so that both dotenv readers read it back unchanged.

    Raises EnvFileError, naming `key` but never the value, when no single rendering exists (for
    example a value holding ' and # together with ", \\ or $).
    """
    value = str(value)
    if PLAIN_RE.fullmatch(value):
        return value
    for rendered in _candidates(value):
        if "\n" not in rendered and "\r" not in rendered and read_alike(rendered) == value:
            return rendered
    raise EnvFileError(
        "the value of %s cannot be written so that both Mastodon's Ruby dotenv and the streaming "
        "server's npm dotenv read it unchanged: a value with a line break, or with both ' and #, "
        "cannot also hold \", \\ or $; choose a value without that combination" % key)


def validate(values):
    """Raise EnvFileError for keys or values that cannot be represented."""
    for key, value in values.items():
        if not KEY_RE.fullmatch(key):
            raise EnvFileError("invalid key %r: use letters, digits and underscores, not starting with a digit" % key)
        if value is not None and "\x00" in str(value):
            raise EnvFileError("the value of %s contains a NUL byte" % key)
        if value is not None:
            format_value(value, key)


def _lines(text):
    """Split on newlines only: dotenv does not treat other Unicode line breaks as line ends."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse(text):
    """Return {key: value} as dotenv would read it (the first definition wins, as in dotenv)."""
    result = {}
    for line in _lines(text):
        match = LINE_RE.fullmatch(line)
        if match and match.group("key") not in result:
            result[match.group("key")] = parse_value(match.group("value"))
    return result


def update(text, values):
    """Apply `values` ({key: value or None}) to the file text.

    Returns (new_text, added, updated, removed) with sorted key names. A key set to None is removed.
    A key already present keeps its line position; later duplicates of a managed key are dropped so
    that no stale definition can shadow the new one.
    """
    validate(values)
    wanted = {k: (None if v is None else str(v)) for k, v in values.items()}
    lines = _lines(text)
    seen = set()
    out, updated, removed = [], set(), set()
    for line in lines:
        match = LINE_RE.fullmatch(line)
        key = match.group("key") if match else None
        if key is None or key not in wanted:
            out.append(line)
            continue
        if key in seen or wanted[key] is None:
            removed.add(key) if wanted[key] is None else updated.add(key)
            seen.add(key)
            continue
        seen.add(key)
        if read_alike(match.group("value")) == wanted[key]:
            out.append(line)
        else:
            out.append("%s%s=%s" % (match.group("lead"), key, format_value(wanted[key], key)))
            updated.add(key)
    added = []
    for key in values:
        if key not in seen and wanted[key] is not None:
            out.append("%s=%s" % (key, format_value(wanted[key], key)))
            added.append(key)
    if not (added or updated or removed):
        return text, [], [], []
    new_text = "\n".join(out) + ("\n" if out else "")
    return new_text, sorted(added), sorted(updated), sorted(removed)


def _opens_quote(raw):
    """The quote a raw value opens and does not close on its line (dotenv reads on to the next lines), or ''."""
    value = raw.strip()
    if value[:1] in ("'", '"') and (len(value) == 1 or not value.endswith(value[0])):
        return value[0]
    return ""


def mask(text, secret_keys=()):
    """Return `text` with every secret value replaced, for diffs and logs.

    A value is replaced whole when is_secret() says so (by its key, `secret_keys`, or because it looks like
    a credential), including the further lines of a quoted value that spans several; any other line that
    looks like a credential is replaced whole too.
    """
    out = []
    open_quote, hiding = "", False
    for line in text.split("\n"):
        if open_quote:
            if hiding or looks_like_credential(line):
                out.append(MASK)
            else:
                out.append(line)
            if open_quote in line:
                open_quote, hiding = "", False
            continue
        match = LINE_RE.fullmatch(line)
        if match:
            raw = match.group("value")
            open_quote = _opens_quote(raw)
            hiding = bool(raw.strip()) and is_secret(match.group("key"), secret_keys, raw)
            out.append("%s%s=%s" % (match.group("lead"), match.group("key"), MASK) if hiding else line)
        else:
            out.append(MASK if looks_like_credential(line) else line)
    return "\n".join(out)


def holds_secret(text, secret_keys=()):
    """True when the file text sets a key that looks secret to a non-empty value, or holds a URL with a password."""
    for line in _lines(text):
        match = LINE_RE.match(line)
        if not match:
            continue
        value = match.group("value").strip()
        if value and is_secret(match.group("key"), secret_keys, value):
            return True
    return False
