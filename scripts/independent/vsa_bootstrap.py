"""Shared by vsa-sign.py and vsa-verify.py: re-run the calling script with the venv's python.

vsa-setup.sh makes (once) a venv holding PyPI in-toto and securesystemslib and prints its python
last; the scripts import those only after this has put them under that python.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def bootstrap(script):
    """Re-executes `script` under the venv's python unless already there; exit 3 when the tools
    cannot be installed."""
    if os.environ.get("CUSTODY_VSA_VENV_ACTIVE") == "1":
        return
    r = subprocess.run([os.path.join(HERE, "vsa-setup.sh")], stdout=subprocess.PIPE)
    if r.returncode != 0:
        sys.exit(3)
    py = r.stdout.decode().strip().splitlines()[-1]
    os.environ["CUSTODY_VSA_VENV_ACTIVE"] = "1"
    os.execv(py, [py, os.path.abspath(script), *sys.argv[1:]])
