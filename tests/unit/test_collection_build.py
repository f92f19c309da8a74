# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection builds, installs from its tarball, and ansible-doc lists every module."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def _run(args, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=300, **kwargs)


def test_build_install_and_list_modules(tmp_path):
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), REPO])
    (tarball,) = glob.glob(str(tmp_path / "kubeforge-cluster-*.tar.gz"))
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert not [n for n in names if n.split("/")[0] in (".venv", ".cache", ".ansible", ".ci", "molecule")]
    assert "plugins/module_utils/_data/releases.yml" in names
    # No Galaxy server here: install the tarball alone (its dependencies come with the ansible package).
    _run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p", str(tmp_path / "c"), tarball])
    # Only the installed copy: no ansible.cfg of the checkout (it links the checkout itself).
    env = {key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "c")
    listed = _run([os.path.join(BIN, "ansible-doc"), "-l", "kubeforge.cluster"], env=env, cwd=str(tmp_path)).stdout
    modules = {os.path.splitext(f)[0] for f in os.listdir(os.path.join(REPO, "plugins", "modules")) if f.endswith(".py")}
    assert modules, "no modules found"
    assert {line.split()[0] for line in listed.splitlines() if line.strip()} == {f"kubeforge.cluster.{m}" for m in modules}
