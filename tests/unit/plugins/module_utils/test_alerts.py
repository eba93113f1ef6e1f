"""The Prometheus alert rules: the shipped rules (the metrics role's defaults, through the same module_utils the role's
filter calls) run under Debian's promtool against alerts/promtool_test.yml, which must cover every rule both firing
and quiet; and the Redis exporter's latency script, run by a real Redis, reads Sidekiq's jobs as the doctor does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
import yaml

from ansible_collections.fediops.mastodon.plugins.module_utils import alerts, doctor
from ansible_collections.fediops.mastodon.plugins.module_utils.redis_wire import Connection

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..", "..", "..")
PROMTOOL_TEST = os.path.join(HERE, "alerts", "promtool_test.yml")
ROLE_DEFAULTS = os.path.join(TOP, "roles", "metrics", "defaults", "main.yml")


def shipped_rules():
    """The rules the metrics role writes with its defaults (metrics_alert_thresholds is doctor_thresholds, unset)."""
    with open(ROLE_DEFAULTS, encoding="utf-8") as handle:
        defaults = yaml.safe_load(handle)
    return alerts.rules({}, defaults["metrics_alert_for"], defaults["metrics_alert_window"])


def promtool(tmp_path, rules, test_file=PROMTOOL_TEST):
    if not shutil.which("promtool"):
        raise RuntimeError("promtool is missing: run scripts/ensure-host-packages.sh (make units does)")
    with open(tmp_path / "fediops-mastodon-rules.yml", "w", encoding="utf-8") as handle:
        yaml.safe_dump(rules, handle, sort_keys=False)
    shutil.copy(test_file, tmp_path / "test.yml")
    return subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_shipped_rules_pass_promtool(tmp_path):
    check = subprocess.run(["promtool", "check", "rules", "/dev/stdin"], input=yaml.safe_dump(shipped_rules()),
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    proc = promtool(tmp_path, shipped_rules())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_a_promtool_case_that_fires_and_one_that_does_not():
    with open(PROMTOOL_TEST, encoding="utf-8") as handle:
        cases = yaml.safe_load(handle)["tests"]
    fires, quiet = set(), set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    generated = {rule["alert"] for rule in shipped_rules()["groups"][0]["rules"]}
    assert generated - fires == set(), "rules without a promtool case where they fire"
    assert generated - quiet == set(), "rules without a promtool case where they stay quiet"
    assert fires | quiet <= generated, "promtool cases of rules that no longer exist"


def test_a_wrong_metric_name_fails_promtool(tmp_path):
    # How a rule that reads a metric no exporter exports shows up: its alert never fires, and promtool says so.
    rules = shipped_rules()
    for rule in rules["groups"][0]["rules"]:
        rule["expr"] = rule["expr"].replace("redis_evicted_keys_total", "redis_evicted_keys")
    proc = promtool(tmp_path, rules)
    assert proc.returncode != 0
    assert "FediopsCacheEvicting" in proc.stdout + proc.stderr


def test_thresholds_come_from_the_doctor_and_annotations_from_its_findings():
    rules = {r["alert"]: r for r in alerts.rules({"sidekiq_latency_s": 7, "slot_retained_bytes": 2 ** 31})["groups"][0]["rules"]}
    latency = rules["FediopsSidekiqQueueLatency"]
    assert latency["expr"].endswith(">= 7") and latency["for"] == "5m"
    assert latency["annotations"]["thresholds"] == "doctor_thresholds.sidekiq_latency_s = 7"
    assert "fediops_pg_slot_retained_bytes >= 2147483648 " in rules["FediopsReplicationSlotWAL"]["expr"]
    for rule in rules.values():
        section, variable = doctor.FINDINGS[rule["labels"]["finding"]]
        assert rule["annotations"]["section"] == doctor.GUIDE[section]
        assert rule["annotations"]["variable"] == variable
    # Every threshold a rule reads is one the doctor knows.
    assert {t for _n, _f, used, _e, _s in alerts.ALERTS for t in used} <= set(doctor.THRESHOLDS)


@pytest.mark.parametrize("overrides, for_, window, message", [
    ({"sidekiq_latency_s": -1}, "5m", "5m", "must be zero or more"),
    ({"sidekiq_latncy_s": 5}, "5m", "5m", "unknown threshold"),
    ({}, "5 minutes", "5m", "metrics_alert_for: '5 minutes' is not a Prometheus duration"),
    ({}, "5m", "5m\n", "metrics_alert_window: '5m\\n' is not a Prometheus duration"),
])
def test_bad_settings_are_refused(overrides, for_, window, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("\\n", "\\\\n")):
        alerts.rules(overrides, for_, window)


def test_the_latency_script_reads_sidekiq_jobs_as_the_doctor_does(redis_server):
    conn = Connection(redis_server(), 0)
    now = time.time()
    jobs = {
        "push": json.dumps({"class": "A", "enqueued_at": now - 42.5}),         # Sidekiq 6 and 7: float seconds
        "default": json.dumps({"class": "B", "enqueued_at": int((now - 90) * 1000)}),  # Sidekiq 8: milliseconds
        "mailers": "not json",
    }
    for queue, payload in jobs.items():
        conn.call("SADD", "queues", queue)
        conn.call("LPUSH", "queue:" + queue, json.dumps({"class": "newer", "enqueued_at": now}))
        conn.call("RPUSH", "queue:" + queue, payload)  # the oldest job is at the right end
    conn.call("SADD", "queues", "empty")
    # The exporter's call: EVAL script 0 0, a flat list of key, value.
    reply = conn.call("EVAL", alerts.exporter_extras()["redis_script"], "0", "0")
    values = dict(zip(reply[::2], (float(v) for v in reply[1::2])))
    assert set(values) == {alerts.LATENCY_KEY + q for q in ("push", "default", "mailers", "empty")}
    for queue, payload in jobs.items():
        expected = now - doctor.job_enqueued_at(payload) if doctor.job_enqueued_at(payload) else 0
        assert abs(values[alerts.LATENCY_KEY + queue] - expected) < 2, (queue, values)
    assert values[alerts.LATENCY_KEY + "empty"] == 0
    conn.close()


def test_the_postgresql_queries_use_the_doctors_sql():
    queries = alerts.exporter_extras()["postgresql_queries"]
    assert doctor.STANDBY_REPLAY_LAG_SQL in queries["fediops_pg_standby"]["query"]
    assert doctor.SLOT_RETAINED_BYTES_SQL in queries["fediops_pg_slot"]["query"]
    # The names the rules read are <query>_<column>, as the exporter makes them.
    exported = {name + "_" + column for name, query in queries.items()
                for metric in query["metrics"] for column, spec in metric.items() if spec["usage"] == "GAUGE"}
    for rule in shipped_rules()["groups"][0]["rules"]:
        for name in [w for w in rule["expr"].replace("(", " ").split() if w.startswith("fediops_pg_")]:
            assert name in exported, (rule["alert"], name)
