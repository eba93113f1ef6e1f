# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd drop-ins as pure functions: where one lives and its text."""

from __future__ import annotations

import re

# Matched with fullmatch: "$" would also match before a final line break, which would reach the path.
UNIT_RE = re.compile(r"[A-Za-z0-9@._:-]+\.(service|socket|timer|target|mount|path|slice)")
NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
SECTION_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
# The header Ansible's templates wrote (ansible_managed's default), so that files written by earlier
# releases compare equal and do not restart their units.
HEADER = "# Ansible managed\n"


class DropinError(ValueError):
    """A unit, name or setting systemd would not read as meant."""


def dropin_path(unit, name):
    if not UNIT_RE.fullmatch(unit or ""):
        raise DropinError("systemd_dropin: unit %r is not a valid systemd unit name" % unit)
    if not NAME_RE.fullmatch(name or ""):
        raise DropinError("systemd_dropin: drop-in name %r: use letters, digits, '.', '_' and '-'" % name)
    return "/etc/systemd/system/%s.d/%s.conf" % (unit, name)


def render_dropin(settings):
    """{Section: {Key: value or [values]}} as drop-in text; a list writes the key once per value."""
    blocks = []
    for section, pairs in (settings or {}).items():
        if not SECTION_RE.fullmatch(str(section)):
            raise DropinError("systemd_dropin: section %r is not a unit file section name" % section)
        lines = ["[%s]\n" % section]
        for key, value in (pairs or {}).items():
            if not KEY_RE.fullmatch(str(key)):
                raise DropinError("systemd_dropin: %r in [%s] is not a unit file setting name" % (key, section))
            for item in value if isinstance(value, (list, tuple)) else [value]:
                text = str(item)
                if "\n" in text or "\r" in text:
                    raise DropinError("systemd_dropin: %s= in [%s] holds a line break" % (key, section))
                lines.append("%s=%s\n" % (key, text))
        blocks.append("".join(lines))
    return HEADER + "\n".join(blocks)
