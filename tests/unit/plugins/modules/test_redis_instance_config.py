"""redis_instance_config module: before its package is installed it does nothing at all, so that a run that finds
the package installed needs no apt call."""

from __future__ import annotations

from ansible_collections.fediops.mastodon.plugins.modules import redis_instance_config as module


def test_without_its_package_it_reads_and_writes_nothing(run_module, monkeypatch):
    calls = []

    def run_command(self, argv, **_kwargs):
        calls.append(argv)
        return 0, "not-installed", ""
    monkeypatch.setattr(module.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(module, "read_text", lambda path: calls.append(["read", path]) or "")
    code, result, _out = run_module(module, {"maxmemory": "64mb", "package": "redis-server"})
    assert code == 0 and result["installed"] is False and not result["changed"]
    assert calls == [["dpkg-query", "-W", "-f=${db:Status-Status}", "redis-server"]]
