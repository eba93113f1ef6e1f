"""roles/read_replica/tasks/conf.yml on this machine: a settings file PostgreSQL would refuse never stays.

The role's own tasks run through ansible-playbook against localhost, with the file in a temporary folder, the
owner of this process, and `postgres -C` replaced by a command that refuses (or accepts) the way it does. What
is checked is the file left on disk, the backup copies left beside it, and the message of the failed run.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess

import pytest

NAME = "60-fediops-read-replica.conf"
REFUSE = ["sh", "-c", "echo 'FATAL:  invalid value for parameter \"max_wal_senders\": \"300000\"' >&2; exit 1"]
ACCEPT = ["true"]


def converge(tmp_path, check_argv, check_mode=False, senders=300000):
    """Run conf.yml; return (rc, output)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: fediops.mastodon.read_replica\n"
        "        tasks_from: conf\n")
    user = getpass.getuser()
    extra = {
        "__read_replica_conf_path": str(tmp_path / "conf.d" / NAME),
        "__read_replica_conf_owner": user,
        "__read_replica_postgres_check_argv": check_argv,
        "__read_replica_is_replica": False,
        "read_replica_listen_addresses": ["localhost"],
        "read_replica_max_wal_senders": senders,
        "ansible_python_interpreter": "auto_silent",
    }
    argv = ["ansible-playbook", "-i", "localhost,", str(playbook), "-e", json.dumps(extra)]
    if check_mode:
        argv.append("--check")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False, env=env)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def conf_d(tmp_path):
    folder = tmp_path / "conf.d"
    folder.mkdir()
    return folder


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name != NAME)


def test_a_refused_file_is_replaced_by_the_previous_one(tmp_path, conf_d):
    (conf_d / NAME).write_text("max_wal_senders = 10\n")
    rc, out = converge(tmp_path, REFUSE)
    assert rc != 0, out
    assert "PostgreSQL would refuse the new replication settings" in out and "was put back" in out, out
    assert 'invalid value for parameter "max_wal_senders"' in out, out
    assert (conf_d / NAME).read_text() == "max_wal_senders = 10\n"
    assert leftovers(conf_d) == []


def test_a_refused_first_file_is_removed(tmp_path, conf_d):
    rc, out = converge(tmp_path, REFUSE)
    assert rc != 0 and "was removed" in out, out
    assert not (conf_d / NAME).exists()
    assert leftovers(conf_d) == []


def test_an_accepted_file_stays_and_no_copy_is_left(tmp_path, conf_d):
    (conf_d / NAME).write_text("max_wal_senders = 10\n")
    rc, out = converge(tmp_path, ACCEPT, senders=12)
    assert rc == 0, out
    assert "max_wal_senders = 12\n" in (conf_d / NAME).read_text()
    assert leftovers(conf_d) == []


def test_check_mode_writes_nothing_and_runs_no_check(tmp_path, conf_d):
    (conf_d / NAME).write_text("max_wal_senders = 10\n")
    rc, out = converge(tmp_path, REFUSE, check_mode=True)
    assert rc == 0, out
    assert (conf_d / NAME).read_text() == "max_wal_senders = 10\n"
    assert leftovers(conf_d) == []
