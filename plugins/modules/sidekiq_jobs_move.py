#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fediops.mastodon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: sidekiq_jobs_move
short_description: Move Sidekiq's queued, scheduled, retried and dead jobs to the Redis Mastodon now gives Sidekiq
description:
  - The target is the Redis at O(target_host), or, when that is empty, the one Mastodon's environment file now
    names for Sidekiq, read the way Mastodon reads it (C(lib/mastodon/redis_configuration.rb)). That is
    C(SIDEKIQ_REDIS_URL), or the C(SIDEKIQ_REDIS_*) parts when C(SIDEKIQ_REDIS_HOST) is set, or else the main
    Redis (C(REDIS_URL), C(REDIS_HOST), ...).
  - The source is the Redis at O(source_host), or, when that is empty, the main Redis of the same file. Moving
    Sidekiq onto its own Redis uses the default. Moving it back passes the old instance's address.
  - Run it after every process that pushes jobs (web, Sidekiq, streaming hosts alike) was restarted onto the
    target. A Sidekiq process that stops pushes its unfinished jobs back to the Redis it used, so the move
    carries those too.
  - Moves the set C(queues), each C(queue:NAME) list (oldest job still taken first, ahead of the jobs already in the
    target), and the sorted sets
    C(schedule), C(retry) and C(dead). Each key is renamed in the source first, then copied, then deleted. If a
    run stops midway, the next run copies what is left, so a job may run twice but none is lost.
  - Does nothing when the source and the target are the same server and database. Refuses a target whose eviction
    policy is not C(noeviction), and an environment with C(REDIS_NAMESPACE) (namespaced keys, before Mastodon 4.4).
  - Passwords come from the environment file, O(source_password) or O(target_password) and travel only in Redis's
    C(AUTH), never on a command line or in the output.
  - Finds the queues by the set C(queues) and by the keys C(queue:*) (a stopping Sidekiq pushes its unfinished jobs
    back without adding the name to the set). A name leaves the source's set only once its queue is empty there.
  - Copies left in the target by an interrupted move in the other direction are put back onto their keys, after the
    moved jobs, since they are older.
  - 'One move at a time: see O(lock_wait).'
  - The environment file is read through the collection's safe walk (the checkout belongs to the C(mastodon) user).
version_added: 0.1.0
options:
  env_file:
    description: Mastodon's environment file.
    type: path
    default: /home/mastodon/live/.env.production
  source_host:
    description: Address of the Redis to move from; empty for the main Redis named in O(env_file).
    type: str
    default: ""
  source_port:
    description: Port of that Redis.
    type: int
    default: 6379
  source_password:
    description: Its password; empty for none. Never logged.
    type: str
    default: ""
  source_db:
    description: Its database number.
    type: int
    default: 0
  to_main_redis:
    description: Move to the main Redis named in O(env_file) (C(REDIS_*)), whatever it names for Sidekiq; for moving back.
    type: bool
    default: false
  target_host:
    description: Address of the Redis to move to; empty for the one O(env_file) names for Sidekiq (or, with O(to_main_redis), its main Redis).
    type: str
    default: ""
  target_port:
    description: Port of that Redis.
    type: int
    default: 6379
  target_password:
    description: Its password; empty for none. Never logged.
    type: str
    default: ""
  target_db:
    description: Its database number.
    type: int
    default: 0
  lock_wait:
    description:
      - Seconds to wait for another move into or out of the same Redis to end. Each move holds a lock in both
        servers (C(fediops:sidekiq-move:lock), C(SET NX PX), renewed as it copies); two at once would lose the jobs
        a late writer pushed between them. After the wait the run fails and moves nothing.
    type: float
    default: 60
    version_added: 0.2.0
extends_documentation_fragment:
  - fediops.mastodon.attributes
attributes:
  check_mode:
    details: Counts the jobs that would move and moves none. A target that does not run yet (a preview of its first run) is not
        needed for that.
  diff_mode:
    details: No diff.
author:
  - fediops maintainers (@fediops)
"""

EXAMPLES = r"""
- name: Move Sidekiq's jobs from the main Redis to Sidekiq's own Redis
  fediops.mastodon.sidekiq_jobs_move:
    env_file: /home/mastodon/live/.env.production
"""

RETURN = r"""
jobs:
  description: Jobs moved (or that would be, in check mode), by key; keys without jobs are left out.
  returned: always
  type: dict
  sample: {"queue:default": 120, "schedule": 3}
queues:
  description: Queue names moved from the source's C(queues) set to the target's.
  returned: always
  type: list
  elements: str
source:
  description: The source as host:port (never a password).
  returned: always
  type: str
target:
  description: The target as host:port.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediops.mastodon.plugins.module_utils import doctor
from ansible_collections.fediops.mastodon.plugins.module_utils import sidekiq_move, text_file
from ansible_collections.fediops.mastodon.plugins.module_utils.env_file import parse as parse_env
from ansible_collections.fediops.mastodon.plugins.module_utils.redis_wire import Connection, RedisError


def given(params, side):
    """The endpoint given in the options for `side` (source or target), or None to read it from the env file."""
    if not params[side + "_host"]:
        return None
    return dict(host=params[side + "_host"], port=params[side + "_port"], password=params[side + "_password"],
                db=params[side + "_db"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            env_file=dict(type="path", default="/home/mastodon/live/.env.production"),
            source_host=dict(type="str", default=""),
            source_port=dict(type="int", default=6379),
            source_password=dict(type="str", default="", no_log=True),
            source_db=dict(type="int", default=0),
            to_main_redis=dict(type="bool", default=False),
            target_host=dict(type="str", default=""),
            target_port=dict(type="int", default=6379),
            target_password=dict(type="str", default="", no_log=True),
            target_db=dict(type="int", default=0),
            lock_wait=dict(type="float", default=60.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    result = dict(changed=False, jobs={}, queues=[], source="", target="")
    try:
        # The checkout belongs to the mastodon user: the safe walk, never a plain open.
        if not text_file.exists(p["env_file"]):
            module.fail_json(msg="cannot read %s: it does not exist" % p["env_file"], **result)
        env = parse_env(text_file.read_text(p["env_file"]))
    except text_file.TextFileError as exc:
        module.fail_json(msg="cannot read %s: %s" % (p["env_file"], exc), **result)
    if env.get("REDIS_NAMESPACE"):
        module.fail_json(msg="%s sets REDIS_NAMESPACE: Sidekiq's keys carry that namespace, which this move does not "
                             "handle. Mastodon 4.4 and later refuse REDIS_NAMESPACE; remove it first." % p["env_file"],
                         **result)
    try:
        source = given(p, "source") or doctor.redis_endpoint(env, "")
        target = (given(p, "target") or (None if p["to_main_redis"] else doctor.redis_endpoint(env, "SIDEKIQ_"))
                  or doctor.redis_endpoint(env, ""))
    except (doctor.DoctorError, ValueError) as exc:
        module.fail_json(msg=str(exc), **result)
    result["source"] = doctor.endpoint_label(source)
    result["target"] = doctor.endpoint_label(target)

    conns = []
    try:
        try:
            src = Connection(source["host"], source["port"], source["password"], source["db"], raw=True)
        except RedisError:
            if not module.check_mode:
                raise
            # A preview of removing an instance that someone stopped: the run starts it first.
            result["msg"] = "%s does not answer: the jobs it holds are counted when the run starts it." % result["source"]
            module.exit_json(**result)
        conns.append(src)
        try:
            dst = Connection(target["host"], target["port"], target["password"], target["db"], raw=True)
        except RedisError:
            if not module.check_mode:
                raise
            # A preview of the target's first run: it does not run yet, and every job would move.
            moved = sidekiq_move.move(src, None, check_mode=True)
            dst = None
        if dst is not None:
            conns.append(dst)
            if sidekiq_move.server_id(src, source["db"]) == sidekiq_move.server_id(dst, target["db"]):
                result["msg"] = "Sidekiq's jobs are already on %s: nothing to move." % result["target"]
                module.exit_json(**result)
            problems = sidekiq_move.target_problems(dst)
            if problems:
                module.fail_json(msg=" ".join(problems), **result)
            moved = sidekiq_move.move(src, dst, module.check_mode, p["lock_wait"], (result["source"], result["target"]))
    except (RedisError, sidekiq_move.MoveError) as exc:
        module.fail_json(msg="moving Sidekiq's jobs from %s to %s: %s" % (result["source"], result["target"], exc),
                         **result)
    finally:
        for conn in conns:
            conn.close()
    result.update(moved)
    result["changed"] = bool(moved["jobs"] or moved["queues"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
