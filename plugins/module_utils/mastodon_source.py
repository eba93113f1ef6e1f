# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Mastodon checkout says about itself, and helpers every role's logic shares, as pure functions:
the one parser of Mastodon versions, and the one way to put a host into a URL."""

from __future__ import annotations

import ipaddress
import re

# 4.4.0, v4.3.2, 4.5.0-beta.1: major and minor, an optional patch, then any pre-release tail.
VERSION_RE = re.compile(r"v?([0-9]{1,6})\.([0-9]{1,6})(?:\.([0-9]{1,6}))?(?:[-+.][^\r\n]{0,100})?")

# lib/mastodon/version.rb belongs to the mastodon user, so it is read as untrusted text: line by line, each
# line at most MAX_LINE characters, matched whole (fullmatch) by patterns with no nested repetition, so that no
# input can make them backtrack. Mastodon writes each part as a method whose body is the number:
#   def major
#     4
#   end
# One-line forms (`def major; 4; end`, `def major = 4`) are read too. Comments (`# def major`, and
# =begin/=end blocks) are never code.
MAX_SOURCE_BYTES = 64 * 1024
MAX_LINE = 200
_PARTS = ("major", "minor", "patch")
_DEF_RE = re.compile(r"def[ \t]+(major|minor|patch)(?:[ \t]*\([ \t]*\))?")
_ONE_LINE_RE = re.compile(r"def[ \t]+(major|minor|patch)(?:[ \t]*\([ \t]*\))?[ \t]*"
                          r"(?:;[ \t]*([0-9]{1,6})[ \t]*;[ \t]*end|=[ \t]*([0-9]{1,6}))")
_NUMBER_RE = re.compile(r"[0-9]{1,6}")
_COMMENT_RE = re.compile(r"[ \t]*#[^\n]*")


class MastodonSourceError(ValueError):
    """A file that is not what the checkout should hold."""


def _code_lines(text):
    """The file's lines without comments and blank lines, each stripped; over-long lines are left out (no
    version part is written on one)."""
    block_comment = False
    for raw in text.split("\n"):
        if len(raw) > MAX_LINE:
            continue
        line = raw.strip()
        if block_comment:
            block_comment = not line.startswith("=end")
            continue
        if raw.startswith("=begin"):
            block_comment = True
            continue
        # A trailing comment after code: the patterns here hold no # of their own.
        code = line.split("#", 1)[0].rstrip()
        if code:
            yield code


def version_from_source(text):
    """The version ("4.5.0") that lib/mastodon/version.rb declares: major, minor and patch, each defined once."""
    if len(text or "") > MAX_SOURCE_BYTES:
        raise MastodonSourceError("lib/mastodon/version.rb is larger than %d bytes: is this Mastodon's checkout? "
                                  "Set mastodon_version instead" % MAX_SOURCE_BYTES)
    found, pending, awaiting_end = {}, None, None
    for line in _code_lines(text or ""):
        if pending is not None:
            if not _NUMBER_RE.fullmatch(line):
                raise MastodonSourceError("lib/mastodon/version.rb defines %s as something other than a number: is this "
                                          "Mastodon's checkout? Set mastodon_version instead" % pending)
            value, awaiting_end, pending = line, pending, None
        elif awaiting_end is not None:
            if line != "end":
                raise MastodonSourceError("lib/mastodon/version.rb defines %s as more than a number: is this Mastodon's "
                                          "checkout? Set mastodon_version instead" % awaiting_end)
            part, awaiting_end = awaiting_end, None
            _keep(found, part, value)
        else:
            one = _ONE_LINE_RE.fullmatch(line)
            if one:
                _keep(found, one.group(1), one.group(2) or one.group(3))
            elif _DEF_RE.fullmatch(line):
                pending = _DEF_RE.fullmatch(line).group(1)
    missing = [part for part in _PARTS if part not in found]
    if missing or pending or awaiting_end:
        raise MastodonSourceError("lib/mastodon/version.rb does not define %s as a number: is this Mastodon's "
                                  "checkout? Set mastodon_version instead" % (missing or [pending or awaiting_end])[0])
    return ".".join(str(int(found[part])) for part in _PARTS)


def _keep(found, part, value):
    if part in found and found[part] != value:
        raise MastodonSourceError("lib/mastodon/version.rb defines %s twice (%s and %s): is this Mastodon's checkout? "
                                  "Set mastodon_version instead" % (part, found[part], value))
    found[part] = value


def parse_version(version):
    """(major, minor, patch) of a Mastodon version such as 4.4.0, v4.3.2 or 4.5.0-beta.1."""
    match = VERSION_RE.fullmatch(str(version).strip()) if version is not None else None
    if not match:
        raise MastodonSourceError("Mastodon version %r is not a version like 4.4.0" % (version,))
    return tuple(int(part or 0) for part in match.groups())


def version_regressions(version, recorded=None, running=None, state_file="the state file"):
    """Why the checkout's `version` cannot be trusted: it is older than the release this host last ran (as
    `recorded` after a successful run) or than the one its running web process reports (`running`). A checkout
    never goes backwards in Mastodon (migrations do not run down), so an older version.rb is a file someone
    wrote, which would steer root (Makara mode before 4.2, say). A newer one is an upgrade under way."""
    problems = []
    current = parse_version(version)
    if recorded and current < parse_version(recorded):
        problems.append(
            "lib/mastodon/version.rb says %s, but this host last ran Mastodon %s (recorded in %s after a successful "
            "run): a checkout never goes back to an older release. Put the checkout back, or, if you restored an older "
            "release on purpose, delete %s and run again." % (version, recorded, state_file, state_file))
    if running and current < parse_version(running):
        problems.append(
            "lib/mastodon/version.rb says %s, but the running web process reports Mastodon %s: the checkout does "
            "not match what runs. Put the checkout back to %s or newer." % (version, running, running))
    return problems


def newest(*versions):
    """The newest of the versions given (None and empty ones left out), or None."""
    known = [v for v in versions if v]
    return max(known, key=parse_version) if known else None


def url_host(host):
    """`host` as the host part of a URL: an IPv6 address in brackets, anything else as it is."""
    host = str(host).strip()
    if host.startswith("["):
        return host
    try:
        if ipaddress.ip_address(host).version == 6:
            return "[%s]" % host
    except ValueError:
        pass
    return host
