# SPDX-License-Identifier: GPL-3.0-or-later
"""pip bootstrap for ansible-test's sanity venvs (installed as its cached get_pip_<version>.py).

ansible-test bootstraps pip with ensurepip and then runs pip in the same process. ensurepip
removes every PIP_* variable and points PIP_CONFIG_FILE at /dev/null, so that pip ignores the
machine's pip configuration, including the CA bundle a TLS-inspecting network needs. Here pip
runs in a child process with that configuration restored.
"""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap()
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args, env=env))
