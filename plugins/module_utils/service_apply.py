# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decide from the running state whether a systemd unit needs a restart or a reload.

A unit is compared with the files it reads: what it reads only at start (its unit file, drop-ins,
EnvironmentFile= and the caller's restart files) against the time it entered "active", and what a
reload applies against the later of that time and the last reload recorded here. A run that was
interrupted after writing a file and before restarting is therefore completed by the next run,
which finds the file newer than the process.

Some files hold both kinds of setting (pgbouncer.ini's listen_port needs a restart, its pool sizes a
reload). For those, the values of the restart-only settings applied last are recorded beside the
unit's start time; a change of one of them means a restart. Without such a record (the first run
after a reboot cleared /run) a changed file means a restart.

Units that must run (`start`) are started and enabled, and units that must not (`stop`) stopped and
disabled, in the same call: a preview (check mode) then names the starts of units whose unit file an
earlier task would write, and a later call of the same run knows which units an earlier one stops.

Pure functions: the module does the systemctl calls, the stats and the record files.
"""

from __future__ import annotations

import datetime
import fnmatch
import re

from ansible_collections.fediops.mastodon.plugins.module_utils import pgbouncer_ini, redis_instance

SHOW_PROPERTIES = ("Id", "Type", "LoadState", "ActiveState", "ActiveEnterTimestamp", "NeedDaemonReload",
                   "UnitFileState", "FragmentPath", "DropInPaths", "EnvironmentFiles")
SETTINGS_FORMATS = ("pgbouncer", "redis")
# Matched with fullmatch: "$" would also match before a final line break.
UNIT_NAME_RE = re.compile(r"[A-Za-z0-9@._:*?\[\]-]+")


def parse_show(text):
    """Units from `systemctl show -p ... a b c` (blocks separated by a blank line) as dicts."""
    units = []
    current = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                units.append(current)
            current = {}
            continue
        key, value = line.split("=", 1) if "=" in line else (line, "")
        current[key] = value
    if current:
        units.append(current)
    return units


def parse_timestamp(value):
    """Seconds since the epoch from `--timestamp=us+utc` output ("Tue 2026-12-01 14:51:22.123456 UTC").

    None when systemd has no time (an empty value or "n/a").
    """
    value = (value or "").strip()
    if not value or value == "n/a":
        return None
    parts = value.split()
    if len(parts) == 4:  # weekday, date, time, zone
        parts = parts[1:]
    if len(parts) != 3 or parts[2] != "UTC":
        raise ValueError("unexpected systemd timestamp %r (expected --timestamp=us+utc)" % value)
    when = datetime.datetime.strptime(parts[0] + " " + parts[1], "%Y-%m-%d %H:%M:%S.%f")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def unit_paths(unit_id, directory="/etc/systemd/system"):
    """Where a unit file or drop-in of this unit may be written: the unit itself, and for an instance
    (name@inst.service) its template too."""
    names = [unit_id]
    if "@" in unit_id:
        prefix, rest = unit_id.split("@", 1)
        names.append("%s@.%s" % (prefix, rest.rsplit(".", 1)[-1]))
    return [directory + "/" + name for name in names]


def pending_start_files(unit, pending):
    """Of the files a check-mode run would have written, those the unit reads at start: its own, a new
    unit file, or a new drop-in of the unit or its template."""
    own = set(start_files(unit))
    found = []
    for path in pending:
        if path in own:
            found.append(path)
            continue
        for base in unit_paths(unit.get("Id", "")):
            if path == base or (path.startswith(base + ".d/") and path.endswith(".conf")):
                found.append(path)
                break
    return found


def start_files(unit):
    """The files systemd and the service read when the unit starts, from its `systemctl show` dict."""
    files = []
    if unit.get("FragmentPath"):
        files.append(unit["FragmentPath"])
    files.extend(unit.get("DropInPaths", "").split())
    # "EnvironmentFiles=/path (ignore_errors=no)", several separated by spaces as well.
    for token in unit.get("EnvironmentFiles", "").split():
        if token.startswith("/"):
            files.append(token)
    return files


def restart_settings(text, fmt):
    """The values of the settings that `fmt`'s server applies only when it starts."""
    if fmt == "pgbouncer":
        section = pgbouncer_ini.parse(text).get("pgbouncer", {})
        return {key: section[key] for key in sorted(pgbouncer_ini.NO_RELOAD) if key in section}
    if fmt == "redis":
        parsed = redis_instance.parse_conf(text)
        return {key: value for key, value in sorted(parsed.items())
                if not redis_instance.is_live(key) and key not in redis_instance.SECRET_SETTINGS}
    raise ValueError("unknown settings format %r, expected one of %s" % (fmt, ", ".join(SETTINGS_FORMATS)))


def present_files(unit, mtimes):
    """The unit's own start files that exist, sorted (recorded after each apply). Not the caller's
    restart files: callers differ in those, and systemd's list is the same for all of them."""
    return sorted({path for path in start_files(unit) if mtimes.get(path) is not None})


def _newest(mtimes, paths):
    """(mtime, path) of the newest existing path, or (None, None)."""
    best = (None, None)
    for path in paths:
        mtime = mtimes.get(path)
        if mtime is not None and (best[0] is None or mtime > best[0]):
            best = (mtime, path)
    return best


def decide(unit, mtimes, restart_files=(), reload_files=(), settings_file=None, settings=None, record=None,
           pending=()):
    """What a running unit needs: ("restart" | "reload" | None, reason).

    unit: its `systemctl show` dict; mtimes: {path: mtime or None}; settings: the restart-only
    settings the settings file holds now; record: what was recorded after the last restart or reload
    ({"started": float, "applied": float, "settings": dict}), or None.
    """
    # A oneshot unit runs no process that could hold an old configuration, so it is never restarted;
    # a reload still passes on (Debian's postgresql.service reloads its clusters that way). Mastodon's
    # mastodon-streaming.service is one: it groups the instances (PartOf=), so restarting it would
    # restart every instance because, say, one port was added to its Wants=.
    oneshot = unit.get("Type") == "oneshot"
    started = parse_timestamp(unit.get("ActiveEnterTimestamp"))
    if started is None:
        return (None, "") if oneshot else ("restart", "systemd does not say when it started")
    # Check mode: what earlier tasks would have written is not on disk, so it is named instead.
    waiting = pending_start_files(unit, pending) + [path for path in pending if path in restart_files]
    if waiting and not oneshot:
        return "restart", "%s would change" % waiting[0]
    waiting = [path for path in pending if path in reload_files or path == settings_file]
    if waiting:
        return ("reload" if any(path in reload_files for path in waiting) else None,
                "%s would change" % waiting[0])
    valid = bool(record) and record.get("started") == started
    if not oneshot:
        changed_at, path = _newest(mtimes, start_files(unit) + list(restart_files))
        if changed_at is not None and changed_at > started:
            return "restart", "%s changed after it started" % path
        # A removed drop-in or environment file leaves no newer file behind: compare with the files
        # the process started with.
        gone = sorted(set(record.get("files") or []) - set(present_files(unit, mtimes))) if valid else []
        if gone:
            return "restart", "%s was removed after it started" % ", ".join(gone)
    applied = max(started, record.get("applied", started)) if valid else started
    watched = list(reload_files) + ([settings_file] if settings_file else [])
    changed_at, path = _newest(mtimes, watched)
    if changed_at is None or changed_at <= applied:
        return None, ""
    if settings_file and not oneshot:
        # A record of an earlier life of the process still tells the settings it restarted with: only
        # this module writes the file, and it records after every write that a run completes.
        if not record:
            return "restart", "%s changed after it started and the settings it runs with are unknown" % path
        known = record.get("settings") or {}
        differ = sorted(key for key in set(settings or {}) | set(known) if (settings or {}).get(key) != known.get(key))
        if differ:
            return "restart", "%s changed settings applied only at start: %s" % (settings_file, ", ".join(differ))
    if any(mtimes.get(item) is not None and mtimes[item] > applied for item in reload_files):
        return "reload", "%s changed after the last start or reload" % path
    return None, ""


# States in which a unit runs (or is on its way there): a start would do nothing.
RUNNING_STATES = ("active", "activating", "reloading")
# Unit file states `systemctl disable` undoes; the others (static, indirect, generated, ...) have nothing to undo.
ENABLED_STATES = ("enabled", "enabled-runtime", "linked", "linked-runtime")
# A pending_done entry naming a unit with this word instead of a path: an earlier call of the run would stop it.
STOPPED = "stopped"
# Stands in, in check mode, for the start of a unit a package install of the run would start: long ago, so
# that only the files the run would write count.
PACKAGE_START = "Thu 1970-01-01 00:00:01.000000 UTC"


def is_pattern(name):
    """Whether a unit name holds a glob (systemctl's and fnmatch's * ? [...])."""
    return any(char in name for char in "*?[")


def stop_targets(patterns, loaded, enabled_links, keep=()):
    """The units to stop and disable: every loaded unit, and every unit enabled through a link in a
    .wants/ or .requires/ folder (systemd lists neither for an instance that is not loaded), whose name
    matches one of `patterns`, except those in `keep` and template units (name@.service)."""
    found = set()
    for name in list(loaded) + list(enabled_links):
        if "@." in name or name in keep:
            continue
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            found.add(name)
    return sorted(found)


def stop_actions(unit):
    """What a unit that must not run needs: a subset of ["stop", "disable", "reset-failed"], in order."""
    actions = []
    if unit.get("ActiveState") in RUNNING_STATES + ("deactivating",):
        actions.append("stop")
    if unit.get("UnitFileState") in ENABLED_STATES:
        actions.append("disable")
    if unit.get("ActiveState") == "failed":
        actions.append("reset-failed")
    return actions


def start_actions(unit, stopped_before=False):
    """What a unit that must run and start at boot needs: a subset of ["start", "enable"].

    A unit systemd does not know (check mode, before its unit file or package is there) needs both;
    stopped_before: an earlier call of this run would stop it (check mode), so it is started again."""
    if unit.get("LoadState", "loaded") != "loaded":
        return ["start", "enable"]
    actions = []
    if stopped_before or unit.get("ActiveState") not in RUNNING_STATES:
        actions.append("start")
    if unit.get("UnitFileState") == "disabled":
        actions.append("enable")
    return actions


def start_reason(unit, stopped_before=False):
    """Why a unit is started, for the module's reasons (names only)."""
    if unit.get("LoadState", "loaded") != "loaded":
        return "not installed yet"
    if stopped_before:
        return "stopped earlier in this run"
    return "was %s" % (unit.get("ActiveState") or "not running")


def package_started(unit_id):
    """Check mode: a unit a package install of this run would bring and start, as `systemctl show` would
    then describe it. Nothing of it is on disk yet, so only the files the run would write decide."""
    return {"Id": unit_id, "Type": "simple", "LoadState": "loaded", "ActiveState": "active",
            "ActiveEnterTimestamp": PACKAGE_START, "NeedDaemonReload": "no", "UnitFileState": "enabled",
            "FragmentPath": "", "DropInPaths": "", "EnvironmentFiles": ""}


def stopped_earlier(pending_done):
    """Units an earlier call of this run would stop (check mode), from pending_done."""
    found = set()
    for entry in pending_done:
        unit, _sep, what = entry.partition(" ")
        if what == STOPPED:
            found.add(unit)
    return found


def record_name(unit_id):
    """A file name for the unit's record (unit names may hold @ and \\x escapes, never a slash)."""
    return unit_id.replace("/", "_") + ".json"
