"""Offline stand-in for the get-pip bootstrap script that ansible-test downloads.

ansible-test runs `python get_pip.py <pip args>` to put pip into the venvs it makes. That download
cannot be reached here, so this uses the interpreter's bundled pip (ensurepip) and then installs what
was asked for from the configured package index.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
