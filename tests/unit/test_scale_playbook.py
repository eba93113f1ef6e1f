"""playbooks/scale.yml stays a list of plays that read the fleet model (issue 27).

Placement is decided once, in plugins/module_utils/fleet.py, and every play reads the result (`scale_fleet`). A play
that looks up another host's variables, or a header that lists the settings with their defaults, is a second copy of
a rule that then drifts: the settings' defaults were once written in the header and in fleet.SETTINGS.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.fediops.mastodon.plugins.module_utils import fleet

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(TOP, "playbooks", "scale.yml")
README = os.path.join(TOP, "README.md")
MAX_LINES = 450
# The ones left: the play's batch size (serial is templated before any host's variables exist), the hosts' input
# of the layout, the Redis passwords, the primary's PgBouncer secret and the report's parts.
MAX_HOSTVARS_LOOKUPS = 5
HOSTVARS = re.compile(r"hostvars\[|map\(\s*['\"]extract['\"]\s*,\s*hostvars\b")


def _text():
    with open(PLAYBOOK, encoding="utf-8") as handle:
        return handle.read()


def _header():
    """The comment block at the top of the playbook."""
    lines = []
    for line in _text().splitlines():
        if line.strip() == "---":
            continue
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_the_playbook_stays_short():
    count = len(_text().splitlines())
    assert count < MAX_LINES, "playbooks/scale.yml has %d lines: move decisions into the fleet model" % count


def test_few_lookups_of_other_hosts_variables():
    found = [line.strip() for line in _text().splitlines() if HOSTVARS.search(line)]
    assert len(found) <= MAX_HOSTVARS_LOOKUPS, "\n".join(found)


@pytest.mark.parametrize("line, lookups", [
    ("serial: \"{{ hostvars[groups['mastodon_app'][0]].scale_fleet.batch }}\"", 1),
    ("{{ [h] | map('extract', hostvars, 'x') | first }}", 1),
    ("{{ hosts | map(\"extract\", hostvars, ['a', 'b']) }}", 1),
    ("{{ scale_fleet.hosts[inventory_hostname] }}", 0),
])
def test_the_lookup_count_sees_both_spellings(line, lookups):
    assert len(HOSTVARS.findall(line)) == lookups


def test_the_header_points_to_the_settings_instead_of_restating_them():
    header = _header()
    assert "fleet.py" in header and "SETTINGS" in header
    named = sorted(name for name in fleet.SETTINGS if re.search(r"\b%s\b" % name, header))
    assert named == [], "the header names settings whose defaults live in fleet.SETTINGS: %s" % ", ".join(named)
    # A default in brackets, as the old list wrote them ("scale_metrics_enabled [false]").
    assert not re.search(r"\[[^\]]*\]", header), header


def _readme_settings():
    """{setting: default} from the README's table of the settings of scale.yml."""
    with open(README, encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("#### Settings of scale.yml", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(scale_\w+)` \| `([^`]*)` \|", section, re.M)
    return {name: yaml.safe_load(default) for name, default in rows}


def test_the_readme_documents_every_setting_with_the_default_fleet_py_gives():
    assert _readme_settings() == fleet.SETTINGS


def test_the_readme_section_the_header_names_exists():
    assert '"Settings of scale.yml"' in _header()
    assert _readme_settings()
