# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter puma_defaults: Puma's processes and threads from a host's facts."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: puma_defaults
short_description: Puma's WEB_CONCURRENCY and MAX_THREADS from a host's CPU and memory facts
version_added: 0.1.0
description:
  - One Puma worker per vCPU with 5 threads each, as long as the workers fit in O(memory_share) of
    the host's memory; when memory caps the workers, each gets more threads, up to O(max_threads).
  - The guide's advice is that more processes beat more threads for throughput.
  - Without the C(memtotal_mb) fact the workers are sized by CPU alone.
  - Fails when the input is not a mapping, has neither C(processor_vcpus) nor C(processor_count), or an
    option is out of range (O(max_threads) below O(base_threads), O(memory_share) not above 0 and at most 1).
positional: worker_memory_mb, memory_share, base_threads, max_threads
options:
  _input:
    description:
      - The host's facts (C(ansible_facts), or host variables with the C(ansible_) prefix), with at least the
        hardware subset gathered.
    type: dict
    required: true
  worker_memory_mb:
    description: Resident memory of one Puma worker, in MB.
    type: int
    default: 400
  memory_share:
    description: Share of the host's memory Puma may use, above 0 and at most 1.
    type: float
    default: 0.5
  base_threads:
    description: Threads per worker when every vCPU has a worker (Mastodon's default is 5).
    type: int
    default: 5
  max_threads:
    description: Ceiling for threads per worker when memory caps the workers.
    type: int
    default: 10
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Show what Puma would get on this host
  ansible.builtin.debug:
    msg: "{{ ansible_facts | fediops.mastodon.puma_defaults(400, 0.5) }}"
"""

RETURN = r"""
_value:
  description: C(processes), C(threads), C(limited_by) (C(cpu) or C(memory)) and C(formula) (a sentence).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.fediops.mastodon.plugins.module_utils.web_plan import (
    WebPlanError,
    puma_defaults_from_facts,
)


def puma_defaults(facts, worker_memory_mb=400, memory_share=0.5, base_threads=5, max_threads=10):
    try:
        return puma_defaults_from_facts(facts, worker_memory_mb=worker_memory_mb, memory_share=memory_share,
                                        base_threads=base_threads, max_threads=max_threads)
    except WebPlanError as exc:
        raise AnsibleFilterError("puma_defaults: %s" % exc) from exc


class FilterModule:
    def filters(self):
        return {"puma_defaults": puma_defaults}
