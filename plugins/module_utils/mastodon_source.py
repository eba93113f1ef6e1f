# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Mastodon checkout says about itself, and helpers every role's logic shares, as pure functions:
the one parser of Mastodon versions, and the one way to put a host into a URL."""

from __future__ import annotations

import ipaddress
import re

# 4.4.0, v4.3.2, 4.5.0-beta.1: major and minor, an optional patch, then any pre-release tail.
VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+.].*)?$")

# lib/mastodon/version.rb defines each part as a method whose body is the number:
#   def major
#     4
#   end
_PART_RE = {part: re.compile(r"def\s+%s\s*(?:\(\s*\))?\s*\n?\s*(\d+)\s*(?:\n\s*end|;\s*end)" % part)
            for part in ("major", "minor", "patch")}


class MastodonSourceError(ValueError):
    """A file that is not what the checkout should hold."""


def version_from_source(text):
    """The version ("4.5.0") that lib/mastodon/version.rb declares."""
    parts = []
    for part, pattern in _PART_RE.items():
        match = pattern.search(text or "")
        if not match:
            raise MastodonSourceError("lib/mastodon/version.rb does not define %s as a number: is this Mastodon's "
                                      "checkout? Set mastodon_version instead" % part)
        parts.append(match.group(1))
    return ".".join(parts)


def parse_version(version):
    """(major, minor, patch) of a Mastodon version such as 4.4.0, v4.3.2 or 4.5.0-beta.1."""
    match = VERSION_RE.match(str(version).strip()) if version is not None else None
    if not match:
        raise MastodonSourceError("Mastodon version %r is not a version like 4.4.0" % (version,))
    return tuple(int(part or 0) for part in match.groups())


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
