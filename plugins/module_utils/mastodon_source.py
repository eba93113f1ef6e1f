# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Mastodon checkout says about itself, as pure functions."""

from __future__ import annotations

import re

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
