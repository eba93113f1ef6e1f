"""molecule's check action ran converge.yml with --check before converge (molecule/site: prepare.yml previews the
first run on the fresh host, then molecule previews converge's change; molecule/split previews nothing):
molecule/shared/check_mode.yml proved each left every file and service process as it was.

One file for every scenario: the base config's verifier adds it to each scenario's tests."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_runs import assert_check_runs  # noqa: E402


def test_previews_predicted_changes_then_none_and_touched_nothing():
    # One preview before converge, in molecule's log. molecule/site says where its previews are logged, oldest first
    # (FEDIOPS_CHECK_LOGS): prepare's on the fresh host, then molecule's.
    logs = os.environ.get("FEDIOPS_CHECK_LOGS", "ansible.log").split()
    # FEDIOPS_CHECK_RUNS: what each preview predicts, oldest first ("change" or "none"); empty where there is none.
    assert_check_runs([os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], log) for log in logs],
                      os.environ.get("FEDIOPS_CHECK_RUNS", "change").split())
