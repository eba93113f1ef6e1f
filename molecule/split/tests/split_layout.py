"""The split scenario's hosts and test values, for every test file of molecule/split (one copy).

converge.yml holds the vault values; side_effect.yml records round two's placement on db1.
"""

import os
import re
import sys

import testinfra

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from testinfra_helpers import run_ok  # noqa: E402

APPS = ["split-app1", "split-app2"]
HOSTS = ["split-db1", "split-db2"] + APPS
LIVE = "/home/mastodon/live"
ENV_FILE = LIVE + "/.env.production"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
CONVERGE_LOG = os.path.join(EPHEMERAL, "ansible.log")

# converge.yml's vault values (the S3 endpoint is db2's address, see s3_endpoint()).
VAULT = {"vault_pgbouncer_mastodon_db_password": "split-Test:db/pass%1 'q'",
         "vault_pgbouncer_admin_password": "split-Test:admin/pass%2",
         "vault_pgbouncer_stats_password": "split-Test:stats/pass%5",
         "vault_read_replica_replication_password": "split-Test:repl/pass%3",
         "vault_redis_cache_password": "split-Test:cache/pass%4",
         "vault_sidekiq_redis_password": "split-Test:sidekiq/pass%6",
         "vault_media_s3_access_key_id": "split-test-s3-key",
         "vault_media_s3_secret_access_key": "split-Test:s3/secret%8"}
DB_PASSWORD = VAULT["vault_pgbouncer_mastodon_db_password"]
ADMIN_PASSWORD = VAULT["vault_pgbouncer_admin_password"]
CACHE_PASSWORD = VAULT["vault_redis_cache_password"]
SIDEKIQ_PASSWORD = VAULT["vault_sidekiq_redis_password"]
# Every secret converge.yml passes; the access key id is not one.
SECRETS = [value for key, value in VAULT.items() if key != "vault_media_s3_access_key_id"]


def host(name):
    return testinfra.get_host("docker://" + name)


def address(h):
    """The host's address on the scenario's network."""
    return re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", run_ok(h, "ip -4 -o addr show scope global")).group(1)


def placement():
    """This round's PgBouncer placement: "primary" in round one, "app" after side_effect."""
    res = host("split-db1").run("cat /etc/fediops-test-placement")
    return res.stdout.strip() if res.rc == 0 else "primary"


def s3_endpoint():
    return "http://%s:5000" % address(host("split-db2"))
