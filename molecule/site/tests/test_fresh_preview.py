"""A preview (--check) of the first run on the fresh stand-in host names exactly the changes that run then made:
the changed tasks, and the units started (Sidekiq's processes, the streaming instances and their group, the cache),
stopped (the single streaming service), restarted and reloaded (PgBouncer after its package started it, PostgreSQL for
PgBouncer's pg_hba.conf lines).

prepare.yml ran both from the controller, as an operator would, logging each to its own file; converge's preview
on the converged host is test_site.py's test_a_preview_of_a_change_names_exactly_what_the_real_run_changes."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import what_changed  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def read(name):
    with open(os.path.join(EPHEMERAL, name), encoding="utf-8", errors="replace") as handle:
        return handle.read()


def test_a_preview_on_the_fresh_host_names_exactly_what_the_first_run_changes():
    preview, real = what_changed(read("fresh-preview.log")), what_changed(read("fresh-run.log"))
    # The first run really started what did not exist before and stopped the single streaming service: the
    # comparison proves something. (prepare.yml stopped the single Sidekiq before, to queue jobs: it is only disabled.)
    # The cache's start and PostgreSQL's reload for PgBouncer's pg_hba.conf lines are made by the modules that write
    # their files (their `service` option): they count too.
    assert {"start mastodon-sidekiq@default.service", "start mastodon-streaming@4002.service",
            "stop mastodon-streaming.service", "start redis-server@cache.service"} <= real[1], real[1]
    assert [unit for unit in real[1] if unit.startswith("reload postgresql@")], real[1]
    assert preview[1] == real[1], {"only previewed": sorted(preview[1] - real[1]), "only made": sorted(real[1] - preview[1])}
    assert preview[0] == real[0], {"only previewed": sorted(preview[0] - real[0]), "only made": sorted(real[0] - preview[0])}
