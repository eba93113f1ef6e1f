#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: mastodon_checkout
short_description: Read what a Mastodon checkout says about itself, as untrusted input
description:
  - Reads C(lib/mastodon/version.rb), which keys C(.env.production) sets, and optionally C(config/database.yml)
    from Mastodon's checkout, the one way the collection reads from it.
  - The checkout belongs to the C(mastodon) user, who runs the most exposed process on the host. Every file is
    reached through the collection's safe walk (no link planted by that user is followed, only a regular file
    is read, and no more than a size cap), and parsed with bounded, line-by-line patterns.
  - The version is checked against the newest one this host ran (recorded in O(state_file), which only root
    writes) and against the one the running web process reports. A checkout that goes backwards is refused,
    because an older C(version.rb) is a file someone wrote to steer root (for example into Makara mode).
  - With O(record), stores the version as the newest this host ran, after a successful run.
version_added: 0.2.0
options:
  path:
    description: Mastodon's checkout.
    type: path
    default: /home/mastodon/live
  env_file:
    description: Mastodon's environment file; default C(.env.production) in O(path).
    type: path
  version:
    description:
      - The version the operator pinned (C(mastodon_version)). When set, C(version.rb) is not read, and
        RV(version) is this value.
    type: str
    default: ''
  database_yml:
    description: Also return the text of C(config/database.yml) (register the task with C(no_log)).
    type: bool
    default: false
  web_url:
    description:
      - Base URL of the running web process on this host, for example C(http://127.0.0.1:3000). Its
        C(/api/v1/instance) answer gives the version that runs. Empty asks nothing.
    type: str
    default: ''
  state_file:
    description: Where the newest version this host ran is recorded; only root reads and writes it.
    type: path
    default: /var/lib/fediops-mastodon/checkout.json
  record:
    description:
      - Record RV(version) as the newest version this host ran (never an older one), and end an upgrade recorded under
        way once RV(version) is its target. Check mode only reports it.
    type: bool
    default: false
  upgrade_from:
    description: With O(upgrade_to), record an upgrade under way from this version (C(playbooks/upgrade.yml) does, before any code changes).
    type: str
    default: ''
  upgrade_to:
    description: The target of the upgrade to record as under way; empty records none.
    type: str
    default: ''
  upgrade_code_ready:
    description:
      - With O(upgrade_to), also record that the upgrade's steps all finished on this host (C(code_ready)), so that a
        rerun skips them. Fails when C(version.rb) does not say O(upgrade_to).
    type: bool
    default: false
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Reads in check mode too; O(record) only reports what it would store.
  diff_mode:
    details: Not supported.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Read the checkout
  fediops.mastodon.mastodon_checkout:
    path: /home/mastodon/live
    web_url: http://127.0.0.1:3000
  register: checkout

- name: Stop on a checkout that went backwards
  ansible.builtin.assert:
    that: checkout.problems | length == 0
    fail_msg: "{{ checkout.problems | join(' ') }}"
"""

RETURN = r"""
path:
  description: The checkout read (O(path)).
  returned: always
  type: str
  sample: /home/mastodon/live
version:
  description: The version of the checkout (C(major.minor.patch)), or the pinned O(version).
  returned: always
  type: str
  sample: 4.3.2
recorded_version:
  description: The newest version this host ran, from O(state_file); empty when none was recorded.
  returned: always
  type: str
upgrade:
  description: The upgrade recorded under way on this host, C({from, to, code_ready}), or empty.
  returned: always
  type: dict
running_version:
  description: The version the running web process reports; empty when O(web_url) is empty or it did not answer.
  returned: always
  type: str
problems:
  description: Why the checkout cannot be trusted (it went backwards); empty when it can.
  returned: always
  type: list
  elements: str
env_keys:
  description: The keys C(.env.production) sets (names only, never values), sorted.
  returned: always
  type: list
  elements: str
env_mode:
  description: The permission bits of C(.env.production), in octal, or empty when it does not exist.
  returned: always
  type: str
local_domain:
  description: C(LOCAL_DOMAIN) from C(.env.production), or empty.
  returned: always
  type: str
media_storage:
  description: Where Mastodon stores uploads now, as its C(paperclip.rb) decides from C(.env.production), V(s3), V(swift), V(azure) or V(local).
  returned: always
  type: str
paperclip_root_path:
  description: C(PAPERCLIP_ROOT_PATH) from C(.env.production) (local uploads in another folder), or empty.
  returned: always
  type: str
database_yml:
  description: The text of C(config/database.yml), empty when it does not exist.
  returned: when O(database_yml) is true
  type: str
database_yml_exists:
  description: Whether C(config/database.yml) exists.
  returned: when O(database_yml) is true
  type: bool
"""

import http.client
import json
import os
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fediops.mastodon.plugins.module_utils import mastodon_source, text_file
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import parse as parse_env

INSTANCE_MAX_BYTES = 256 * 1024


def running_version(url, local_domain):
    """The version /api/v1/instance reports, or "" when nothing answers as Mastodon would."""
    try:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            return ""
        hostport = parts.netloc.rsplit("@", 1)[-1]
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=3)
        # As nginx would forward it: Rails forces https and checks the host.
        conn.request("GET", "/api/v1/instance",
                     headers={"Host": local_domain or hostport, "X-Forwarded-Proto": "https", "Accept": "application/json"})
        response = conn.getresponse()
        body = response.read(INSTANCE_MAX_BYTES + 1)
        conn.close()
        if response.status != 200 or len(body) > INSTANCE_MAX_BYTES:
            return ""
        version = json.loads(body.decode("utf-8")).get("version")
        major, minor, patch = mastodon_source.parse_version(version)
        return "%d.%d.%d" % (major, minor, patch)
    except (OSError, ValueError, AttributeError, http.client.HTTPException, mastodon_source.MastodonSourceError):
        return ""


def read_state(path):
    """(newest version recorded, upgrade under way {from, to[, code_ready]} or {}) from the state file; nothing readable is nothing."""
    try:
        data = json.loads(text_file.read_text(path) or "{}")
        recorded = data.get("version") or ""
        if recorded:
            mastodon_source.parse_version(recorded)
        upgrade = data.get("upgrade") or {}
        if upgrade:
            mastodon_source.parse_version(upgrade.get("from"))
            mastodon_source.parse_version(upgrade.get("to"))
        if not upgrade:
            return recorded, {}
        return recorded, dict({"from": upgrade["from"], "to": upgrade["to"]}, **({"code_ready": True} if upgrade.get("code_ready") is True else {}))
    except (ValueError, AttributeError, KeyError, TypeError, text_file.TextFileError, mastodon_source.MastodonSourceError):
        return "", {}


def write_state(path, version, upgrade):
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700)
    state = {"version": version}
    if upgrade:
        state["upgrade"] = upgrade
    text_file.write_atomically(path, json.dumps(state, sort_keys=True) + "\n", 0o600, 0, 0)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/home/mastodon/live"),
            env_file=dict(type="path"),
            version=dict(type="str", default=""),
            database_yml=dict(type="bool", default=False),
            web_url=dict(type="str", default=""),
            state_file=dict(type="path", default="/var/lib/fediops-mastodon/checkout.json"),
            record=dict(type="bool", default=False),
            upgrade_from=dict(type="str", default=""),
            upgrade_to=dict(type="str", default=""),
            upgrade_code_ready=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    root = p["path"].rstrip("/") or "/"
    env_file = p["env_file"] or os.path.join(root, ".env.production")
    result = dict(changed=False, problems=[], recorded_version="", running_version="", path=root)
    try:
        if p["version"]:
            major, minor, patch = mastodon_source.parse_version(p["version"])
            result["version"] = "%d.%d.%d" % (major, minor, patch)
        else:
            source = text_file.read_text(os.path.join(root, "lib/mastodon/version.rb"), mastodon_source.MAX_SOURCE_BYTES)
            result["version"] = mastodon_source.version_from_source(source)
        env = parse_env(text_file.read_text(env_file))
        result["env_keys"] = sorted(env)
        mode = text_file.file_mode(env_file)
        result["env_mode"] = "%04o" % mode if mode is not None else ""
        result["local_domain"] = env.get("LOCAL_DOMAIN", "")
        # Where uploads go now, as Mastodon's config/initializers/paperclip.rb decides it.
        result["media_storage"] = next((kind for kind, key in (("s3", "S3_ENABLED"), ("swift", "SWIFT_ENABLED"),
                                                               ("azure", "AZURE_ENABLED")) if env.get(key) == "true"), "local")
        result["paperclip_root_path"] = env.get("PAPERCLIP_ROOT_PATH", "")
        if p["database_yml"]:
            path = os.path.join(root, "config/database.yml")
            result["database_yml_exists"] = text_file.exists(path)
            result["database_yml"] = text_file.read_text(path, 256 * 1024)
    except (text_file.TextFileError, mastodon_source.MastodonSourceError) as exc:
        module.fail_json(msg="mastodon_checkout: %s" % exc, **result)

    result["recorded_version"], result["upgrade"] = read_state(p["state_file"])
    if p["web_url"]:
        result["running_version"] = running_version(p["web_url"], result["local_domain"])
    if not p["version"]:
        result["problems"] = mastodon_source.version_regressions(
            result["version"], result["recorded_version"], result["running_version"], p["state_file"])

    wanted_version, wanted_upgrade = result["recorded_version"], dict(result["upgrade"])
    if p["upgrade_to"]:
        try:
            for version in (p["upgrade_from"], p["upgrade_to"]):
                mastodon_source.parse_version(version)
        except mastodon_source.MastodonSourceError as exc:
            module.fail_json(msg="mastodon_checkout: %s" % exc, **result)
        wanted_upgrade = {"from": p["upgrade_from"], "to": p["upgrade_to"]}
        same = {key: result["upgrade"].get(key) for key in ("from", "to")} == wanted_upgrade
        if p["upgrade_code_ready"]:
            if mastodon_source.parse_version(result["version"]) != mastodon_source.parse_version(p["upgrade_to"]):
                module.fail_json(msg="mastodon_checkout: %s/lib/mastodon/version.rb says %s after the upgrade's steps, not "
                                     "its target %s: the steps did not bring that release." % (root, result["version"], p["upgrade_to"]),
                                 **result)
            wanted_upgrade["code_ready"] = True
        elif same and result["upgrade"].get("code_ready"):
            wanted_upgrade["code_ready"] = True
        wanted_version = wanted_version or p["upgrade_from"]
    if p["record"] and not result["problems"]:
        wanted_version = mastodon_source.newest(result["version"], result["recorded_version"])
        if wanted_upgrade and mastodon_source.parse_version(wanted_upgrade["to"]) <= mastodon_source.parse_version(wanted_version):
            wanted_upgrade = {}
    if (wanted_version, wanted_upgrade) != (result["recorded_version"], result["upgrade"]) and (p["record"] or p["upgrade_to"]):
        result["changed"] = True
        result["upgrade"] = wanted_upgrade
        if not module.check_mode:
            try:
                write_state(p["state_file"], wanted_version, wanted_upgrade)
            except text_file.TextFileError as exc:
                module.fail_json(msg="mastodon_checkout: %s" % exc, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
