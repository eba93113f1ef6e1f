"""Make `ansible_collections.fediops.mastodon` importable from this checkout."""
import os
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(TOP, ".cache", "collections")).split(":")[0]
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "fediops", "mastodon")):
    raise RuntimeError("run scripts/bootstrap-venv.sh first: %s has no fediops/mastodon link" % COLLECTIONS)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


import json  # noqa: E402

import pytest  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with `args`; return (exit code, parsed result, raw stdout)."""
    def run(module, args):
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exit_info:
                module.main()
        out = capsys.readouterr().out
        return exit_info.value.code, json.loads(out), out
    return run


@pytest.fixture
def redis_server():
    """Start real Redis servers (Debian's redis-server, from scripts/ensure-host-packages.sh), each on a Unix
    socket of its own and nothing else; returns a function that starts one and gives its socket path."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    if not shutil.which("redis-server"):
        raise RuntimeError("redis-server is missing: run scripts/ensure-host-packages.sh (make units does)")
    # A short folder: a Unix socket path holds at most 107 bytes.
    folder = tempfile.mkdtemp(prefix="redis")
    procs = []

    def start(name="redis"):
        sock = os.path.join(folder, name + ".sock")
        procs.append(subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700", "--save", "",
             "--appendonly", "no", "--dir", folder, "--logfile", os.path.join(folder, name + ".log")]))
        deadline = time.monotonic() + 10
        while True:
            # The socket file appears at bind(), a moment before the server accepts: connect to know.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(sock)
                return sock
            except OSError:
                if time.monotonic() > deadline or procs[-1].poll() is not None:
                    raise RuntimeError("redis-server did not start; see %s" % os.path.join(folder, name + ".log"))
                time.sleep(0.01)
            finally:
                probe.close()

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)
