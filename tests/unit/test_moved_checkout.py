"""One Mastodon location: mastodon_dir and mastodon_user move every path and owner every role uses.

Every role's defaults are rendered with mastodon_dir: /srv/mastodon/live and mastodon_user: masto (as Ansible
does, with the checkout role's defaults beneath them): no value may still name /home/mastodon or the user
mastodon, and no task or template may write that path itself.
"""

from __future__ import annotations

import glob
import os

import yaml
from ansible.template import Templar, trust_as_template
from ansible.parsing.dataloader import DataLoader

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MOVED = {"mastodon_dir": "/srv/mastodon/live", "mastodon_user": "masto", "mastodon_version": "4.4.0"}


def role_defaults():
    merged = {}
    for path in sorted(glob.glob(os.path.join(TOP, "roles", "*", "defaults", "main.yml"))):
        with open(path, encoding="utf-8") as handle:
            # As Ansible loads a role's defaults: trusted as templates.
            merged.update({k: trust_as_template(v) if isinstance(v, str) else v
                           for k, v in (yaml.safe_load(handle) or {}).items()})
    return merged


def rendered():
    variables = dict(role_defaults(), **MOVED)
    templar = Templar(loader=DataLoader(), variables=variables)
    out = {}
    for name, value in variables.items():
        if "mastodon" not in name and "env_file" not in name and "unit" not in name:
            continue
        try:
            out[name] = templar.template(value)
        except Exception:  # a default that needs host facts (CPU count, ...): not a path
            continue
    return out


def test_every_role_path_and_owner_follows_mastodon_dir_and_mastodon_user():
    values = rendered()
    paths = {name: value for name, value in values.items() if name.endswith(("_mastodon_env_file", "_mastodon_dir"))}
    paths["mastodon_services_env_file"] = values["mastodon_services_env_file"]
    # The roles that write or read in the checkout all have one.
    assert {name.split("_mastodon")[0] for name in paths} >= {
        "app_env", "pgbouncer", "read_replica", "redis_cache", "sidekiq_queues", "sidekiq_redis", "streaming"}
    for name, value in paths.items():
        assert str(value).startswith("/srv/mastodon/live"), (name, value)
    users = {name: value for name, value in values.items() if name.endswith("_mastodon_user")}
    assert users and set(users.values()) == {"masto"}, users
    versions = {name: value for name, value in values.items() if name.endswith("_mastodon_version")}
    assert set(versions.values()) == {"4.4.0"}, versions
    assert not [name for name, value in values.items() if "/home/mastodon" in str(value)]


def test_no_task_or_template_names_the_default_checkout():
    found = []
    for pattern in ("roles/*/tasks/*.yml", "roles/*/templates/*", "roles/*/vars/*.yml", "playbooks/*.yml"):
        for path in glob.glob(os.path.join(TOP, pattern)):
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if "/home/mastodon" in line and not line.lstrip().startswith("#"):
                        found.append("%s:%d" % (os.path.relpath(path, TOP), number))
    assert found == [], found
