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


# The [Service] sandbox of Mastodon's dist/ units (mastodon-web, -sidekiq, -streaming), the one copy every unit
# this collection writes for Mastodon's processes takes. PrivateUsers=true stays: hosts that cannot set up user
# namespaces (some containers) turn it off in a drop-in of their own.
MASTODON_SANDBOX = """# Proc filesystem
ProcSubset=pid
ProtectProc=invisible
# Capabilities
CapabilityBoundingSet=
# Security
NoNewPrivileges=true
# Sandboxing
ProtectSystem=strict
PrivateTmp=true
PrivateDevices=true
PrivateUsers=true
ProtectHostname=true
ProtectKernelLogs=true
ProtectKernelModules=true
ProtectKernelTunables=true
ProtectControlGroups=true
RestrictAddressFamilies=AF_INET
RestrictAddressFamilies=AF_INET6
RestrictAddressFamilies=AF_NETLINK
RestrictAddressFamilies=AF_UNIX
RestrictNamespaces=true
LockPersonality=true
RestrictRealtime=true
RestrictSUIDSGID=true
RemoveIPC=true
PrivateMounts=true
ProtectClock=true
"""
# Each dist/ unit's system call filter: Puma and Sidekiq change file owners (@chown); streaming needs neither
# @memlock nor @resources.
SYSCALL_FILTERS = {
    "web": ["~@cpu-emulation @debug @keyring @ipc @mount @obsolete @privileged @setuid", "@chown", "pipe", "pipe2"],
    "sidekiq": ["~@cpu-emulation @debug @keyring @ipc @mount @obsolete @privileged @setuid", "@chown", "pipe", "pipe2"],
    "streaming": ["~@cpu-emulation @debug @keyring @ipc @memlock @mount @obsolete @privileged @resources @setuid",
                  "pipe", "pipe2"],
}


def mastodon_sandbox(kind, writable):
    """The sandbox lines of one of Mastodon's units (`web`, `sidekiq` or `streaming`), writable only in `writable`."""
    if kind not in SYSCALL_FILTERS:
        raise DropinError("mastodon_sandbox: kind %r: use %s" % (kind, ", ".join(sorted(SYSCALL_FILTERS))))
    if not str(writable).startswith("/") or any(c in str(writable) for c in " \n\r\"'"):
        raise DropinError("mastodon_sandbox: %r is not an absolute path without spaces or quotes" % (writable,))
    return (MASTODON_SANDBOX + "# System Call Filtering\nSystemCallArchitectures=native\n"
            + "".join("SystemCallFilter=%s\n" % item for item in SYSCALL_FILTERS[kind])
            + "ReadWritePaths=%s\n" % writable)
