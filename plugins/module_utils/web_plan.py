# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Puma's WEB_CONCURRENCY and MAX_THREADS from a host's CPU and memory, as a pure function.

Mastodon's "Scaling up" guide: threads max out the CPU first, processes max out the RAM first, and
for throughput more processes beat more threads. So the default is one Puma worker per vCPU with
Mastodon's own default of 5 threads each, as long as the workers fit in the share of memory given
to Puma. When memory caps the workers below the vCPU count, each remaining worker gets more threads
(up to a ceiling) so the host still serves about vCPUs x 5 requests at once:

    processes = max(1, min(vcpus, floor(memtotal_mb * memory_share / worker_memory_mb)))
    threads   = min(max_threads, max(base_threads, ceil(vcpus * base_threads / processes)))
"""

from __future__ import annotations

# Mastodon's config/puma.rb falls back to 5 threads when MAX_THREADS is unset.
DEFAULT_BASE_THREADS = 5
# Past about 10 threads MRI's global VM lock makes more threads in one worker add latency, not throughput.
DEFAULT_MAX_THREADS = 10
# A Mastodon Puma worker after warm-up, measured as resident memory (copy-on-write shares some).
DEFAULT_WORKER_MEMORY_MB = 400
# PostgreSQL, Redis, Sidekiq and streaming share a one-host server with Puma.
DEFAULT_MEMORY_SHARE = 0.5


class WebPlanError(ValueError):
    """The facts or the knobs are not usable numbers."""


def _positive_int(name, value):
    if isinstance(value, bool):
        raise WebPlanError("%s must be a whole number, got %r" % (name, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WebPlanError("%s must be a whole number, got %r" % (name, value)) from None
    if number < 1:
        raise WebPlanError("%s must be at least 1, got %d" % (name, number))
    return number


def puma_defaults(vcpus, memtotal_mb=None, worker_memory_mb=DEFAULT_WORKER_MEMORY_MB,
                  memory_share=DEFAULT_MEMORY_SHARE, base_threads=DEFAULT_BASE_THREADS,
                  max_threads=DEFAULT_MAX_THREADS):
    """Return {processes, threads, limited_by, formula} for a host.

    `limited_by` is `cpu` when every vCPU got a worker and `memory` when memory capped the workers.
    `memtotal_mb` of None (facts not gathered) budgets by CPU alone.
    """
    vcpus = _positive_int("vcpus", vcpus)
    worker_memory_mb = _positive_int("worker_memory_mb", worker_memory_mb)
    base_threads = _positive_int("base_threads", base_threads)
    max_threads = _positive_int("max_threads", max_threads)
    if max_threads < base_threads:
        raise WebPlanError("max_threads %d is below base_threads %d" % (max_threads, base_threads))
    try:
        memory_share = float(memory_share)
    except (TypeError, ValueError):
        raise WebPlanError("memory_share must be a number between 0 and 1, got %r" % (memory_share,)) from None
    if not 0 < memory_share <= 1:
        raise WebPlanError("memory_share must be above 0 and at most 1, got %r" % memory_share)

    processes = vcpus
    limited_by = "cpu"
    if memtotal_mb is not None:
        memtotal_mb = _positive_int("memtotal_mb", memtotal_mb)
        fit = int(memtotal_mb * memory_share) // worker_memory_mb
        if max(1, fit) < processes:
            processes = max(1, fit)
            limited_by = "memory"
    wanted = -(-vcpus * base_threads // processes)
    threads = min(max_threads, max(base_threads, wanted))
    formula = ("%d processes (%s) x %d threads: one worker per vCPU (%d) while %d MB each fits in %d%% of %s MB; "
               "threads %d, raised toward %d x %d in total when memory caps the workers, at most %d"
               % (processes, "one per vCPU" if limited_by == "cpu" else "memory-bound", threads, vcpus,
                  worker_memory_mb, int(memory_share * 100),
                  memtotal_mb if memtotal_mb is not None else "unknown", base_threads, vcpus, base_threads,
                  max_threads))
    return {"processes": processes, "threads": threads, "limited_by": limited_by, "formula": formula}


def puma_defaults_from_facts(facts, **knobs):
    """puma_defaults() from Ansible facts (`ansible_facts`, with or without the `ansible_` prefix)."""
    if not isinstance(facts, dict):
        raise WebPlanError("facts must be a mapping (ansible_facts), got %s" % type(facts).__name__)

    def fact(name):
        for key in (name, "ansible_" + name):
            if facts.get(key) is not None:
                return facts[key]
        return None

    vcpus = fact("processor_vcpus") or fact("processor_count")
    if vcpus is None:
        raise WebPlanError("facts have no processor_vcpus; gather the hardware subset of facts first")
    return puma_defaults(vcpus, fact("memtotal_mb"), **knobs)
