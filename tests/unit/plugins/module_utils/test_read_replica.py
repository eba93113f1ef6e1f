from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
import yaml
from hypothesis import given, strategies as st

from ansible_collections.fediops.mastodon.plugins.module_utils import read_replica as rr
from ansible_collections.fediops.mastodon.plugins.module_utils.pg_secrets import verify


@pytest.mark.parametrize("version, mode", [
    ("3.5.3", "makara"), ("4.0.0", "makara"), ("4.1.22", "makara"), ("v4.1.0", "makara"),
    ("4.2.0", "native"), ("4.2.0-beta1", "native"), ("4.3", "native"), ("4.5.1", "native"), ("5.0", "native"),
])
def test_mode_for_version(version, mode):
    assert rr.mode_for_version(version) == mode


@pytest.mark.parametrize("version, mode, fragment", [
    ("4.3.0", "makara", "no Makara adapter"),
    ("4.1.2", "native", "does not read REPLICA_DB_*"),
    ("4.3.0", "pgpool", "use auto, makara or native"),
    ("latest", "auto", "not a version"),
])
def test_mode_problems_name_the_fix(version, mode, fragment):
    problems = rr.mode_problems(version, mode)
    assert len(problems) == 1 and fragment in problems[0]
    with pytest.raises(rr.ReadReplicaError):
        rr.resolve_mode(version, mode)


@pytest.mark.parametrize("version, mode", [("4.1.0", "makara"), ("4.2.0", "native"), ("4.4.1", "auto")])
def test_mode_problems_accept_matching(version, mode):
    assert rr.mode_problems(version, mode) == []


@pytest.mark.parametrize("name, ok", [
    ("replica_1", True), ("a", True), ("x" * 63, True), ("x" * 64, False), ("", False),
    ("Replica", False), ("replica-1", False), ("replica.1", False), ("répl", False), ("a b", False),
])
def test_slot_name_rules_match_postgresql(name, ok):
    assert (rr.slot_name_problem(name) is None) is ok


@given(st.text(max_size=100))
def test_derived_slot_names_are_always_valid(host):
    assert rr.slot_name_problem(rr.slot_name_for(host)) is None


@pytest.mark.parametrize("args, url", [
    (("mastodon", "", "10.0.0.2", 5432, "mastodon_production"), "postgresql://mastodon@10.0.0.2:5432/mastodon_production"),
    (("mastodon", "p@ss:w/rd%#?", "db", 6432, "mastodon_replica"),
     "postgresql://mastodon:p%40ss%3Aw%2Frd%25%23%3F@db:6432/mastodon_replica"),
    (("mastodon", "x", "/var/run/postgresql", 5432, "mastodon_production"),
     "postgresql://mastodon:x@/mastodon_production?host=%2Fvar%2Frun%2Fpostgresql&port=5432"),
    (("mastodon", "", "fd00::5", 5432, "db"), "postgresql://mastodon@[fd00::5]:5432/db"),
    (("", "", "h", None, "db"), "postgresql://h/db"),
])
def test_database_url(args, url):
    assert rr.database_url(*args) == url


@given(user=st.text(min_size=1), password=st.text(min_size=1), dbname=st.text(min_size=1))
def test_database_url_round_trips(user, password, dbname):
    parts = urlsplit(rr.database_url(user, password, "db.example", 5432, dbname))
    assert unquote(parts.username) == user
    assert unquote(parts.password) == password
    assert unquote(parts.path[1:]) == dbname
    assert parts.hostname == "db.example" and parts.port == 5432


GUIDE_SHAPE = {
    "adapter": "postgresql_makara",
    "prepared_statements": False,
    "makara": {"id": "postgres", "sticky": True, "connections": [
        {"role": "master", "blacklist_duration": 0, "url": "postgresql://u:p@m:5432/d"},
        {"role": "slave", "url": "postgresql://u:p@r1:5432/d"},
        {"role": "slave", "url": "postgresql://u:p@r2:5432/d"},
    ]},
}


# Mastodon 4.1's config/database.yml before its production section.
DATABASE_YML_HEAD = """default: &default
  adapter: postgresql
  pool: <%= ENV["DB_POOL"] || ENV['MAX_THREADS'] || 5 %>
  timeout: 5000
  encoding: unicode
  sslmode: <%= ENV['DB_SSLMODE'] || "prefer" %>

"""


def test_makara_yaml_has_the_guides_exact_shape():
    text = DATABASE_YML_HEAD + rr.makara_production_yaml(
        "postgresql://u:p@m:5432/d", ["postgresql://u:p@r1:5432/d", "postgresql://u:p@r2:5432/d"])
    parsed = yaml.safe_load(text.replace("<%=", "").replace("%>", ""))
    production = parsed["production"]
    default = parsed["default"]
    assert {k: v for k, v in production.items() if k not in default or k == "adapter"} == GUIDE_SHAPE
    lines = rr.makara_production_yaml("postgresql://u:p@m:5432/d", ["postgresql://u:p@r1:5432/d"]).splitlines()
    assert lines[:8] == ["production:", "  <<: *default", "  adapter: postgresql_makara",
                         "  prepared_statements: false", "  makara:", "    id: postgres", "    sticky: true",
                         "    connections:"]
    assert lines[8:] == ["      - role: master", "        blacklist_duration: 0",
                         "        url: postgresql://u:p@m:5432/d", "      - role: slave",
                         "        url: postgresql://u:p@r1:5432/d"]


def test_makara_needs_a_replica():
    with pytest.raises(rr.ReadReplicaError):
        rr.makara_production("postgresql://m/d", [])


@given(password=st.text(min_size=1, max_size=30))
def test_makara_yaml_urls_survive_yaml(password):
    url = rr.database_url("mastodon", password, "10.0.0.1", 5432, "mastodon_production")
    parsed = yaml.safe_load("default: &default\n  a: 1\n" + rr.makara_production_yaml(url, [url]))
    assert [c["url"] for c in parsed["production"]["makara"]["connections"]] == [url, url]
    assert "<%" not in url


DB_YML = """default: &default
  adapter: postgresql
  timeout: 5000

development:
  <<: *default
  database: dev

production:
  <<: *default
  database: <%= ENV['DB_NAME'] || 'mastodon_production' %>
  port: <%= ENV['DB_PORT'] || 5432 %>

# trailing comment belongs to test
test:
  <<: *default
  database: test
"""


def test_replace_production_section_keeps_the_rest():
    section = "production:\n  <<: *default\n  adapter: postgresql_makara\n"
    out = rr.replace_production_section(DB_YML, section)
    assert "ENV['DB_PORT']" not in out
    assert out.startswith("default: &default\n")
    assert "development:\n  <<: *default\n  database: dev\n" in out
    assert section + "\n# trailing comment belongs to test\ntest:\n" in out
    assert rr.replace_production_section(out, section) == out


@pytest.mark.parametrize("text", ["", "default: &default\n  a: 1\n", "root:$6$x:19000::::::\ndaemon:*:19000::::::\n",
                                  "  production:\n    adapter: postgresql\n", "production: &x # not a block\n"])
def test_a_database_yml_without_a_production_block_is_refused(text):
    """The audit's /etc/shadow behind a link: root never copies a file that is not Mastodon's."""
    with pytest.raises(rr.ReadReplicaError, match="no top-level production: block"):
        rr.replace_production_section(text, "production:\n  <<: *default\n")
    data = _inputs(mastodon_version="4.1.22")
    data["database_yml"] = text
    result = rr.plan(data)
    assert result["database_yml"] is None
    assert any("no top-level production: block" in problem for problem in result["problems"])


def test_native_env_always_sets_the_name():
    env = rr.native_env("127.0.0.1", 6432, "mastodon_replica", "mastodon", "s3cret", False, False)
    assert env == {"REPLICA_DB_HOST": "127.0.0.1", "REPLICA_DB_PORT": "6432", "REPLICA_DB_NAME": "mastodon_replica",
                   "REPLICA_DB_USER": "mastodon", "REPLICA_DB_PASS": "s3cret", "REPLICA_DATABASE_URL": None,
                   "REPLICA_PREPARED_STATEMENTS": "false", "REPLICA_DB_TASKS": "false"}
    with pytest.raises(rr.ReadReplicaError):
        rr.native_env("h", 1, "", "u", "", True, True)


@pytest.mark.parametrize("version", ["4.2.0", "4.3.9"])
def test_before_4_4_the_replica_follows_prepared_statements(version):
    env = rr.native_env("127.0.0.1", 6432, "mastodon_replica", "mastodon", "s3cret", False, False, version)
    assert env["REPLICA_PREPARED_STATEMENTS"] is None and env["REPLICA_DB_TASKS"] is None
    assert env["PREPARED_STATEMENTS"] == "false"
    direct = rr.native_env("10.0.0.2", 5432, "mastodon_production", "mastodon", "s3cret", True, False, version)
    assert "PREPARED_STATEMENTS" not in direct


def test_an_empty_replica_password_falls_back_to_db_pass():
    env = rr.native_env("127.0.0.1", 6432, "mastodon_replica", "mastodon", "", False, False, "4.5.0")
    assert env["REPLICA_DB_PASS"] is None


@pytest.mark.parametrize("value, quoted", [
    ("10.0.0.1", "10.0.0.1"), ("", "''"), ("a b", "'a b'"), ("it's", "'it\\'s'"), ("c:\\x", "'c:\\\\x'"),
])
def test_conninfo_quoting(value, quoted):
    assert rr.conninfo_value(value) == quoted


def test_conninfo_skips_empty_values():
    assert rr.conninfo([("host", "10.0.0.1"), ("port", 5432), ("sslmode", ""), ("passfile", "/a b")]) == \
        "host=10.0.0.1 port=5432 passfile='/a b'"


@pytest.mark.parametrize("value, literal", [("a", "'a'"), ("it's", "'it''s'"), ("c:\\x", "'c:\\\\x'")])
def test_conf_string(value, literal):
    assert rr.conf_string(value) == literal


@pytest.mark.parametrize("args, line", [
    (("10.0.0.1", 5432, "replication", "replicator", "pw"), "10.0.0.1:5432:replication:replicator:pw\n"),
    (("h", 5432, "*", "u", "a:b\\c"), "h:5432:*:u:a\\:b\\\\c\n"),
])
def test_pgpass_line(args, line):
    assert rr.pgpass_line(*args) == line


def test_pgpass_refuses_newlines():
    with pytest.raises(rr.ReadReplicaError):
        rr.pgpass_line("h", 1, "d", "u", "a\nb")


@pytest.mark.parametrize("has_db, standby, local, primary, force, decision", [
    (False, False, None, "1", False, rr.TAKE),
    (True, True, "1", "1", False, rr.KEEP),
    (True, True, "1", "1", True, rr.KEEP),
    (True, False, "7", "1", False, rr.REFUSE),
    (True, False, "7", "1", True, rr.TAKE),
    (True, True, "7", "1", False, rr.REFUSE),
    (True, True, "7", "1", True, rr.TAKE),
    (True, True, None, None, False, rr.REFUSE),
])
def test_basebackup_decision(has_db, standby, local, primary, force, decision):
    got, reason = rr.basebackup_decision(has_db, standby, local, primary, force, "/var/lib/postgresql/15/main")
    assert got == decision
    if decision == rr.REFUSE:
        assert "read_replica_force_rebasebackup" in reason
        assert "/var/lib/postgresql/15/main holds" in reason


def _inputs(**over):
    data = {
        "mastodon_version": "4.3.0", "mode": "auto", "primaries": ["db1"], "replicas": ["db2"],
        "play_hosts": ["db1", "db2"], "is_app": True,
        "hosts": {"db1": {"address": "10.0.0.1", "port": 5432}, "db2": {"address": "10.0.0.2", "port": 5432, "slot": ""}},
        "app": {"db_user": "mastodon", "db_password": "pw", "db_name": "mastodon_production", "via_pgbouncer": False,
                "pgbouncer_host": "127.0.0.1", "pgbouncer_port": 6432, "pgbouncer_primary_db": "mastodon_production",
                "pgbouncer_replica_db": "mastodon_replica", "prepared_statements": True, "db_tasks": False},
        "database_yml": "default: &default\n  adapter: postgresql\n\nproduction:\n  <<: *default\n  database: x\n",
    }
    data.update(over)
    return data


def test_plan_native_direct():
    result = rr.plan(_inputs())
    assert result["problems"] == []
    assert result["mode"] == "native" and result["database_yml"] is None
    assert result["slots"] == {"db2": "db2"}
    assert result["env"]["REPLICA_DB_HOST"] == "10.0.0.2" and result["env"]["REPLICA_DB_NAME"] == "mastodon_production"
    # 4.3 has no REPLICA_PREPARED_STATEMENTS (from 4.4): the key goes, the replica follows PREPARED_STATEMENTS.
    assert result["env"]["REPLICA_PREPARED_STATEMENTS"] is None
    assert rr.plan(_inputs(mastodon_version="4.4.0"))["env"]["REPLICA_PREPARED_STATEMENTS"] == "true"
    assert result["streaming_env"] == {"DB_HOST": "10.0.0.2", "DB_PORT": "5432", "DB_NAME": "mastodon_production"}
    assert result["streaming_environment"] == ["DB_HOST=10.0.0.2", "DB_PORT=5432", "DB_NAME=mastodon_production"]


def test_plan_makara_through_pgbouncer():
    data = _inputs(mastodon_version="4.1.22")
    data["app"]["via_pgbouncer"] = True
    result = rr.plan(data)
    assert result["mode"] == "makara" and result["env"] == {}
    assert result["master_url"] == "postgresql://mastodon:pw@127.0.0.1:6432/mastodon_production"
    assert result["replica_urls"] == ["postgresql://mastodon:pw@127.0.0.1:6432/mastodon_replica"]
    assert "adapter: postgresql_makara" in result["database_yml"]
    assert result["streaming_env"]["DB_NAME"] == "mastodon_replica"


@pytest.mark.parametrize("over, fragment", [
    ({"primaries": []}, "but 0 primaries"),
    ({"primaries": ["db1", "db3"], "play_hosts": ["db1", "db2", "db3"]}, "but 2 primaries"),
    ({"primaries": ["db2"], "play_hosts": ["db2"]}, "in both the primary and the replica group"),
    ({"play_hosts": ["db1"]}, "db2 must run in this play too"),
    ({"replicas": [], "hosts": {}}, "no replica to read from"),
    ({"mode": "makara"}, "no Makara adapter"),
    ({"hosts": {"db1": {"address": "a", "port": 1}, "db2": {"address": "b", "port": 1, "slot": "Bad-Slot"}}},
     "characters PostgreSQL rejects"),
    ({"replicas": ["db2", "db3"], "play_hosts": ["db1", "db2", "db3"],
      "hosts": {"db2": {"slot": "same"}, "db3": {"slot": "same"}}}, "used by two replicas"),
    ({"replica_state": {"has_database": True, "is_standby": False, "system_identifier": "9",
                        "primary_system_identifier": "1"}}, "never wiped by default"),
])
def test_plan_problems(over, fragment):
    result = rr.plan(_inputs(**over))
    assert any(fragment in p for p in result["problems"]), result["problems"]
    assert result["master_url"] is None and result["env"] == {}


def test_plan_keeps_a_standby_of_this_primary():
    state = {"has_database": True, "is_standby": True, "system_identifier": "1", "primary_system_identifier": "1"}
    result = rr.plan(_inputs(is_app=False, replica_state=state))
    assert result["problems"] == [] and result["basebackup"] == rr.KEEP


def test_plan_replication_settings_quote_everything():
    rep = {"user": "replicator", "password": "it's:a\\pw", "passfile": "/var/lib/postgresql/.pgpass x"}
    result = rr.plan(_inputs(is_app=False, self="db2", replication=rep))
    # PostgreSQL gets a SCRAM secret of the password, never the password itself.
    secret = result["role_secret"]
    assert secret.startswith("SCRAM-SHA-256$4096:") and "it's" not in secret and "a\\pw" not in secret
    assert verify("replicator", "it's:a\\pw", secret)
    assert result["pgpass"].splitlines() == ["127.0.0.1:5432:postgres:replicator:it's\\:a\\\\pw",
                                             "10.0.0.1:5432:replication:replicator:it's\\:a\\\\pw"]
    assert result["primary_conninfo"] == (
        "'host=10.0.0.1 port=5432 user=replicator passfile=''/var/lib/postgresql/.pgpass x'' application_name=db2'")
    assert "it's" not in result["primary_conninfo"]


def test_replication_secret_is_reproducible_with_a_salt():
    rep = {"user": "replicator", "password": "pw", "passfile": "/p"}
    one = rr.replication_settings(rep, {"address": "10.0.0.1"}, "db2", salt=b"0123456789abcdef")
    two = rr.replication_settings(rep, {"address": "10.0.0.1"}, "db2", salt=b"0123456789abcdef")
    assert one["role_secret"] == two["role_secret"]


@pytest.mark.parametrize("force", [False, True])
def test_the_primarys_own_system_is_never_wiped(force):
    """Same system identifier but not in recovery: the primary itself, or a promoted standby."""
    got, reason = rr.basebackup_decision(True, False, "7301", "7301", force, "/var/lib/postgresql/15/main",
                                         has_user_data=True)
    assert got == rr.REFUSE and "never wiped" in reason and "7301" in reason
    got, _reason = rr.basebackup_decision(True, False, "7301", "7301", force, "/d", has_user_data=False)
    assert got == rr.REFUSE


def test_plan_replication_needs_a_password():
    with pytest.raises(rr.ReadReplicaError):
        rr.plan(_inputs(is_app=False, self="db2", replication={"user": "r", "password": "", "passfile": "/p"}))


def test_a_fresh_cluster_is_replaced_without_force_but_user_data_is_not():
    fresh, reason = rr.basebackup_decision(True, False, "1", "2", False, "/d", has_user_data=False)
    assert fresh == rr.TAKE and "freshly initialised" in reason
    held = rr.basebackup_decision(True, False, "1", "2", False, "/d", has_user_data=True)[0]
    assert held == rr.REFUSE
    # A standby of another primary is never taken for a fresh cluster.
    other = rr.basebackup_decision(True, True, "1", "2", False, "/d", has_user_data=False)[0]
    assert other == rr.REFUSE


def test_production_adapter():
    assert rr.production_adapter(DATABASE_YML_HEAD + "production:\n  <<: *default\n  adapter: postgresql\n") == "postgresql"
    makara = rr.replace_production_section(DATABASE_YML_HEAD + "production:\n  <<: *default\n",
                                           rr.makara_production_yaml("postgresql://u:p@m/d", ["postgresql://u:p@r/d"]))
    assert rr.production_adapter(makara) == "postgresql_makara"
    # An adapter of another section does not count.
    assert rr.production_adapter("production:\n  database: x\ntest:\n  adapter: postgresql_makara\n") is None
    assert rr.production_adapter("") is None


def test_plan_makara_refuses_a_database_yml_that_already_names_makara():
    data = _inputs(mastodon_version="4.1.22")
    data["database_yml"] = rr.replace_production_section(
        DATABASE_YML_HEAD + "production:\n  <<: *default\n", rr.makara_production_yaml("postgresql://u:p@m/d", ["postgresql://u:p@r/d"]))
    result = rr.plan(data)
    assert result["database_yml"] is None
    assert any("git checkout config/database.yml" in problem for problem in result["problems"])


FENCE = {
    "database": "mastodon_replica", "user": "mastodon", "password": "db/pa:ss\\x", "max_lag_s": 30, "interval_s": 5,
    "resume_lag_s": 10, "resume_after_s": 60, "passfile": "/etc/pgbouncer/fediops-replica-fence.pgpass",
    "state_file": "/var/lib/fediops-mastodon/replica-fence.json",
    "pgbouncer": {"file": "/etc/pgbouncer/fediops-runtime.ini", "unit": "pgbouncer.service",
                  "databases": [{"name": "mastodon_replica", "host": "10.0.0.3", "port": 5433, "dbname": "mastodon_production"}],
                  "postgresql": {"host": "/var/run/postgresql", "port": 5432}, "client": {"host": "127.0.0.1", "port": 6432},
                  "user": "mastodon"},
}


def test_fence_config_beside_the_primary_reads_it_over_loopback_and_fences_to_its_socket():
    out = rr.fence_config(FENCE)
    assert out["problems"] == []
    config = out["config"]
    # PgBouncer reaches the primary as for mastodon_production: the socket, through its peer map.
    assert config["fenced_connstr"] == "host=/var/run/postgresql port=5432 dbname=mastodon_production"
    # Root reads it with the password over loopback, and the standby where PgBouncer reaches it.
    assert config["primary"] == {"host": "127.0.0.1", "port": 5432, "dbname": "mastodon_production"}
    assert config["standby"] == {"host": "10.0.0.3", "port": 5433, "dbname": "mastodon_production"}
    assert config["pgbouncer"] == {"host": "127.0.0.1", "port": 6432, "unit": "pgbouncer.service",
                                   "runtime_file": "/etc/pgbouncer/fediops-runtime.ini"}
    assert (config["max_lag_s"], config["interval_s"], config["resume_lag_s"], config["resume_after_s"]) == (30, 5, 10, 60)
    # The password only in the password file's line, escaped as libpq reads it.
    assert "db/pa:ss" not in repr(config)
    assert out["pgpass"] == "*:*:*:mastodon:db/pa\\:ss\\\\x\n"


def test_fence_config_on_an_application_host_reads_the_primary_where_its_pgbouncer_does():
    data = dict(FENCE, pgbouncer=dict(FENCE["pgbouncer"], postgresql={"host": "10.0.0.1", "port": 5432}))
    config = rr.fence_config(data)["config"]
    assert config["fenced_connstr"] == "host=10.0.0.1 port=5432 dbname=mastodon_production"
    assert config["primary"]["host"] == "10.0.0.1"


@pytest.mark.parametrize("change, name", [
    ({"pgbouncer": {}}, "read_replica_fence_enabled"),
    ({"database": "mastodon_other"}, "pgbouncer_runtime_databases"),
    ({"password": ""}, "read_replica_db_password"),
    ({"resume_lag_s": 30}, "read_replica_max_lag_s"),
    ({"interval_s": 10}, "read_replica_fence_interval_s"),
])
def test_fence_config_problems_name_the_variable(change, name):
    out = rr.fence_config(dict(FENCE, **change))
    assert out["config"] is None and out["pgpass"] is None
    assert any(name in problem for problem in out["problems"]), out["problems"]


def _app_plan(via_pgbouncer, fence):
    return rr.plan({"mastodon_version": "4.5.0", "mode": "auto", "primaries": ["db1"], "replicas": ["db2"],
                    "play_hosts": ["db1", "db2", "app"], "self": "app", "is_app": True,
                    "hosts": {"db1": {"address": "10.0.0.1", "port": 5432}, "db2": {"address": "10.0.0.2", "port": 5432}},
                    "app": {"db_user": "mastodon", "db_password": "pw", "db_name": "mastodon_production",
                            "via_pgbouncer": via_pgbouncer, "pgbouncer_host": "127.0.0.1", "pgbouncer_port": 6432,
                            "pgbouncer_primary_db": "mastodon_production", "pgbouncer_replica_db": "mastodon_replica",
                            "fence": fence}})


@pytest.mark.parametrize("via_pgbouncer, fence, warned", [(False, True, True), (True, True, False), (False, False, False)])
def test_the_plan_says_the_fence_needs_pgbouncer(via_pgbouncer, fence, warned):
    out = _app_plan(via_pgbouncer, fence)
    assert out["problems"] == []
    assert bool(out["warnings"]) is warned
    if warned:
        assert "read_replica_via_pgbouncer" in out["warnings"][0] and "read_replica_fence_enabled: false" in out["warnings"][0]
