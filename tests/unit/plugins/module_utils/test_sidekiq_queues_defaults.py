"""The role's default plan (roles/sidekiq_queues/defaults/main.yml) is sidekiq_plan's default plan."""
from __future__ import annotations

import os

import pytest
import yaml
from ansible.template import Templar, trust_as_template

from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_plan as sp

DEFAULTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles", "sidekiq_queues", "defaults", "main.yml")


@pytest.mark.parametrize("version", ["4.3.2", "4.4.0", "4.5.1"])
def test_role_defaults_match_the_default_plan(version):
    with open(DEFAULTS, encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    variables = dict(defaults, sidekiq_queues_mastodon_version=version)
    # Strings from a plain YAML load are not templates to Ansible until marked trusted, as role defaults are.
    processes = [dict(p, queues=trust_as_template(p["queues"])) if isinstance(p["queues"], str) else p
                 for p in defaults["sidekiq_queues_processes"]]
    rendered = Templar(loader=None, variables=variables).template(processes)
    expected = [{k: v for k, v in p.items() if k not in ("state", "environment")} for p in sp.default_processes(version)]
    assert [dict(p) for p in rendered] == expected
    assert sp.check(rendered, version) == []
