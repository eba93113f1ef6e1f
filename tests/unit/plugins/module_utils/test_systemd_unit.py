"""systemd_unit: a drop-in's path and text, as the role's template wrote them."""

from __future__ import annotations

import pytest

from ansible_collections.fediops.mastodon.plugins.module_utils.systemd_unit import DropinError, dropin_path, render_dropin


def test_the_text_is_the_one_the_earlier_template_wrote():
    # Byte for byte what roles/systemd_dropin/templates/dropin.conf.j2 rendered, so no unit restarts for an upgrade.
    text = render_dropin({"Unit": {"PartOf": ["a.service", "b.service"]},
                          "Service": {"LimitNOFILE": 4096, "Environment": ["A=1", "B=two words"], "NoNewPrivileges": True}})
    assert text == ("# Ansible managed\n[Unit]\nPartOf=a.service\nPartOf=b.service\n\n[Service]\nLimitNOFILE=4096\n"
                    "Environment=A=1\nEnvironment=B=two words\nNoNewPrivileges=True\n")
    assert render_dropin({}) == "# Ansible managed\n"


def test_path_is_below_the_units_folder():
    assert dropin_path("mastodon-sidekiq@.service", "fediops-db") == \
        "/etc/systemd/system/mastodon-sidekiq@.service.d/fediops-db.conf"


@pytest.mark.parametrize("unit, name", [("pgbouncer", "x"), ("../x.service", "x"), ("a.service", "../x"), ("a.service", "")])
def test_a_bad_unit_or_name_is_refused(unit, name):
    with pytest.raises(DropinError):
        dropin_path(unit, name)


@pytest.mark.parametrize("settings", [{"Service": {"Environment": "A=1\nExecStart=/bin/sh"}}, {"Ser vice": {"A": 1}},
                                      {"Service": {"Exec Start": "x"}}])
def test_a_setting_that_would_read_otherwise_is_refused(settings):
    with pytest.raises(DropinError):
        render_dropin(settings)


def test_the_stand_in_units_carry_the_one_sandbox():
    """The stand-in's units are shaped like Mastodon's dist/ files; the roles' units take the same sandbox from
    module_utils/systemd_unit.py. Both must say the same, or one of them drifted from Mastodon's."""
    import os
    import yaml
    from ansible_collections.fediops.mastodon.plugins.module_utils import systemd_unit as su
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    with open(os.path.join(top, "tests", "standin", "prepare.yml"), encoding="utf-8") as handle:
        play = yaml.safe_load(handle)[0]
    assert play["vars"]["standin_hardening"] == su.MASTODON_SANDBOX
    units = {unit["name"]: unit["syscall_filter"] for unit in play["vars"]["standin_units"]}
    assert units == {"mastodon-" + kind: filters for kind, filters in su.SYSCALL_FILTERS.items()}


def test_mastodon_sandbox_refuses_a_path_that_would_break_the_unit():
    import pytest
    from ansible_collections.fediops.mastodon.plugins.module_utils import systemd_unit as su
    assert su.mastodon_sandbox("web", "/srv/mastodon/live").endswith("ReadWritePaths=/srv/mastodon/live\n")
    for bad in ("relative", "/srv/my live", "/srv/x\nExecStartPre=/bin/sh"):
        with pytest.raises(su.DropinError):
            su.mastodon_sandbox("sidekiq", bad)
