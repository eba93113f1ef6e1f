"""The filters of inputs.py, mastodon_source.py and read_replica_plan.py, called as Ansible calls them:
their answers, and their errors as AnsibleFilterError naming the filter."""

from __future__ import annotations

import os

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.filter.inputs import FilterModule as Inputs
from ansible_collections.fediops.mastodon.plugins.filter.mastodon_source import FilterModule as Source
from ansible_collections.fediops.mastodon.plugins.filter.read_replica_plan import FilterModule as Replica

F = dict(Inputs().filters(), **Source().filters(), **Replica().filters())

# The stand-in's version.rb, shaped like Mastodon's own.
VERSION_RB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "fixtures", "standin", "lib",
                          "mastodon", "version.rb")


def test_input_problems_names_the_variable_and_never_quotes_a_password():
    problems = F["input_problems"]([["pgbouncer_listen_port", "port", 70000], ["pgbouncer_admin_password", "password", "a\nb"]])
    assert len(problems) == 2 and "pgbouncer_listen_port" in problems[0] and "a\nb" not in problems[1]
    assert F["input_problems"]([["pgbouncer_listen_port", "port", 6432]]) == []


def test_pg_hba_address_makes_a_host_a_cidr_and_refuses_a_name():
    assert F["pg_hba_address"]("10.0.0.5") == "10.0.0.5/32"
    assert F["pg_hba_address"]("::1") == "::1/128"
    with pytest.raises(AnsibleFilterError, match="pg_hba_address"):
        F["pg_hba_address"]("db1.example")


def test_port_clash_problems_names_both_users_of_a_port():
    clashes = F["port_clash_problems"]([["pgbouncer_listen_port", 6432], ["streaming_ports 6432", 6432],
                                        ["web", 3000]], "app1")
    assert clashes == ["pgbouncer_listen_port and streaming_ports 6432 both use port 6432 on app1: give each its own port."]
    assert F["port_clash_problems"]([["pgbouncer_listen_port", 6432], ["web", 3000]]) == []


def test_mastodon_version_from_source_reads_version_rb():
    with open(VERSION_RB, encoding="utf-8") as handle:
        assert F["mastodon_version_from_source"](handle.read()) == "4.5.0"
    with pytest.raises(AnsibleFilterError):
        F["mastodon_version_from_source"]("module Mastodon\nend\n")


def test_read_replica_plan_refuses_what_is_not_a_mapping():
    with pytest.raises(AnsibleFilterError, match="read_replica_plan: the input must be a mapping"):
        F["read_replica_plan"](["db1"])
