# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An upgrade of the whole fleet, as pure functions: what playbooks/upgrade.yml may do, and in which state it is.

The application hosts' checkouts say which release each one has (lib/mastodon/version.rb, read by
mastodon_checkout); their state files say whether an upgrade was under way (`upgrade: {from, to}`, recorded before
the first host's code changed). `plan()` decides, before anything changes, whether upgrading to `target` is allowed:
never a downgrade, never across a release Mastodon's upgrade notes require as a stop (`stops`), and hosts that
disagree only when they are the two ends of the same interrupted upgrade.
"""

from __future__ import annotations

from ansible_collections.fediops.mastodon.plugins.module_utils.mastodon_source import MastodonSourceError, parse_version

STEPS = ("code", "pre_migrations", "restart", "post_migrations")


class UpgradeError(ValueError):
    """Input that is not an upgrade (the playbook's own data, not the operator's choice)."""


def _version(text, what, problems):
    try:
        return parse_version(text)
    except MastodonSourceError:
        problems.append("%s is %r, which is not a Mastodon version like 4.5.1." % (what, text))
        return None


def _label(parts):
    return "%d.%d.%d" % parts


def plan(hosts, target, stops=()):
    """What upgrading the application hosts to `target` means, or why it must not start.

    `hosts` maps each application host to {version, upgrade} as mastodon_checkout reads them (`upgrade` is the
    interrupted upgrade's {from, to}, or empty). `stops` lists Mastodon's required stops, each {stop, before,
    source}: from a release older than `stop`, an upgrade to `before` or later must pass through `stop` first.

    Returns {from, to, resume, done, needs_code (hosts whose checkout is not at the target yet), problems}.
    """
    problems = []
    if not isinstance(hosts, dict) or not hosts:
        raise UpgradeError("hosts must map at least one application host to what its checkout says")
    wanted = _version(target, "mastodon_upgrade_version", problems)
    versions = {}
    for host, info in sorted(hosts.items()):
        versions[host] = _version((info or {}).get("version"), "%s's lib/mastodon/version.rb" % host, problems)
    if problems:
        return {"problems": problems}
    upgrades = {tuple(sorted(((info or {}).get("upgrade") or {}).items())) for info in hosts.values()} - {()}
    recorded = dict(next(iter(upgrades))) if len(upgrades) == 1 else None
    if len(upgrades) > 1:
        problems.append("the application hosts recorded different upgrades under way (%s): finish the one that was "
                        "started, to its own version, first." % "; ".join(
                            "%s to %s" % (dict(u).get("from"), dict(u).get("to")) for u in sorted(upgrades)))
    distinct = sorted(set(versions.values()))
    origin = min(distinct)
    if recorded:
        start = _version(recorded.get("from"), "the recorded upgrade's starting version", problems)
        end = _version(recorded.get("to"), "the recorded upgrade's target", problems)
        if problems:
            return {"problems": problems}
        if end != wanted:
            problems.append("an upgrade from %s to %s was interrupted on these hosts; run it again to %s to finish it "
                            "(mastodon_upgrade_version: %s) before upgrading further."
                            % (recorded["from"], recorded["to"], recorded["to"], recorded["to"]))
        elif not set(distinct) <= {start, end}:
            problems.append("the application hosts run %s, which are not the two ends of the interrupted upgrade from %s "
                            "to %s: put their checkouts back to one of those." % (
                                ", ".join(_label(v) for v in distinct), recorded["from"], recorded["to"]))
        origin = start
    elif len(distinct) > 1:
        problems.append("the application hosts run different releases (%s) and no upgrade was recorded under way: "
                        "bring every checkout to one release first." % ", ".join(
                            "%s %s" % (host, _label(version)) for host, version in sorted(versions.items())))
    if max(distinct) > wanted:
        problems.append("mastodon_upgrade_version is %s, older than the %s the application hosts run: Mastodon's "
                        "migrations do not run backwards, so a downgrade is refused (restore a backup instead)."
                        % (_label(wanted), _label(max(distinct))))
    for stop in stops or ():
        at = _version(stop.get("stop"), "a required stop", problems)
        before = _version(stop.get("before"), "a required stop's `before`", problems)
        if at and before and origin < at and wanted >= before:
            problems.append(
                "an upgrade from %s to %s skips %s, which Mastodon's upgrade notes require as a stop on the way to %s or "
                "later (%s): upgrade to %s first (mastodon_upgrade_version: %s), then to %s."
                % (_label(origin), _label(wanted), _label(at), _label(before), stop.get("source", "its release notes"),
                   _label(at), _label(at), _label(wanted)))
    needs_code = sorted(host for host, version in versions.items() if version != wanted)
    return {
        "from": _label(origin), "to": _label(wanted), "resume": bool(recorded),
        "done": not needs_code and not recorded, "needs_code": needs_code, "problems": problems,
    }


def migration_env(primary_address, postgresql_port, skip_post):
    """The environment that sends Mastodon's db:migrate straight to PostgreSQL on the primary, never through PgBouncer
    (transaction pooling breaks migrations): DB_HOST and DB_PORT beat .env.production (dotenv keeps what the
    environment sets), and SKIP_POST_DEPLOYMENT_MIGRATIONS runs only the pre-deployment ones."""
    env = {"RAILS_ENV": "production", "DB_HOST": str(primary_address), "DB_PORT": str(int(postgresql_port))}
    if skip_post:
        env["SKIP_POST_DEPLOYMENT_MIGRATIONS"] = "true"
    return env
