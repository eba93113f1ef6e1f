# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: input_problems
short_description: Check operator input against PostgreSQL's, PgBouncer's and TCP's rules
description:
  - Takes a list of C([variable, kind, value]) and returns every problem, each a sentence that names the variable.
  - "Kinds: C(ip), C(cidr), C(ip_list), C(cidr_list) (hostnames are refused), C(listen_addresses) (PostgreSQL: addresses,
    C(localhost) or C(*)), C(pgbouncer_listen_addr) (addresses separated by commas, or C(*)), C(name) (a plain
    PostgreSQL name), C(dbname), C(pg_size) (C(-1) or a size with PostgreSQL's case-sensitive units), C(port),
    C(int>=N), C(password) (set, one line; never quoted back)."
  - The roles call it before any change; an empty list means the input can be used.
  - "The other filters of this file are C(pg_hba_address) (an address or network as a pg_hba.conf column: C(10.0.0.5)
    becomes C(10.0.0.5/32), a hostname is an error) and C(port_clash_problems) (a list of C([variable, port]) or
    C([variable, port, host]) in, the host name for the short form as its argument, a sentence per port used twice
    on one host out)."
version_added: "1.0.0"
options:
  _input:
    description: The checks, each C([variable, kind, value]).
    type: list
    elements: list
    required: true
author:
  - fediops.mastodon contributors
"""

EXAMPLES = r"""
- name: Stop before any change when an address is a hostname
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join(' ') }}"
  vars:
    __problems: "{{ [['read_replica_address', 'ip', read_replica_address]] | fediops.mastodon.input_problems }}"
"""

RETURN = r"""
_value:
  description: The problems, empty when every value is valid.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.fediops.mastodon.plugins.module_utils.inputs import hba_address, port_clashes, problems


def input_problems(checks):
    try:
        return problems([list(check) for check in checks])
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("input_problems: %s" % exc) from exc


def pg_hba_address(value):
    try:
        return hba_address(value)
    except ValueError as exc:
        raise AnsibleFilterError("pg_hba_address: %s" % exc) from exc


def port_clash_problems(ports, host="this host"):
    return port_clashes([list(p)[:2] + [list(p)[2] if len(p) > 2 else host] for p in ports])


class FilterModule:
    def filters(self):
        return {"input_problems": input_problems, "pg_hba_address": pg_hba_address,
                "port_clash_problems": port_clash_problems}
