from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter import site_plan, web_plan


def test_filters_are_registered():
    assert set(site_plan.FilterModule().filters()) == {
        "site_plan_input", "site_report", "site_report_lines", "fleet_connection_plan", "fleet_report"}
    assert set(web_plan.FilterModule().filters()) == {"puma_defaults"}


def test_puma_defaults_filter():
    got = web_plan.puma_defaults({"processor_vcpus": 2, "memtotal_mb": 8192})
    assert (got["processes"], got["threads"]) == (2, 5)
    with pytest.raises(AnsibleFilterError, match="puma_defaults: .*hardware"):
        web_plan.puma_defaults({})


def test_site_filters_wrap_errors():
    with pytest.raises(AnsibleFilterError, match="site_plan_input"):
        site_plan.site_plan_input(["x"])
    with pytest.raises(AnsibleFilterError, match="site_report_lines"):
        site_plan.site_report_lines({})
    demands = {"h": {"web": {"processes": 1, "threads": 2}}}
    plan = {"total_threads": 2, "client_connections": 2, "server_connections": 2, "feasible": True,
            "problems": [], "limits": {"max_client_conn": None, "pgbouncer_server_capacity": None,
                                       "max_connections": None, "superuser_reserved_connections": None,
                                       "postgresql_available": None}}
    lines = site_plan.site_report_lines(site_plan.site_report_filter(demands, plan))
    assert any("2 (no limit known)" in line for line in lines)


def test_fleet_filters_wrap_errors():
    with pytest.raises(AnsibleFilterError, match="fleet_connection_plan: .*scale_postgresql_max_connections"):
        site_plan.fleet_connection_plan({"settings": {}, "plan_input": {}}, [])
    with pytest.raises(AnsibleFilterError, match="fleet_report"):
        site_plan.fleet_report_filter({}, {}, {})
