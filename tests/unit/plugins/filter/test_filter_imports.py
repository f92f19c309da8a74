# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible imports every filter file of the collection in each task worker that calls one of them: a filter
file imports the module_utils behind its filters when they are called, not with the file (README, Layout)."""
import json
import os
import pkgutil
import subprocess
import sys

import ansible_collections.kubeforge.cluster.plugins.filter as filters

PREFIX = "ansible_collections.kubeforge.cluster.plugins.module_utils."
# Small enough to import with the file: what several filters' argument checks use.
LIGHT = {PREFIX + "_errors", PREFIX + "_inventory"}

LOAD_ALL = """
import importlib, json, pkgutil, sys
import ansible_collections.kubeforge.cluster.plugins.filter as filters
for found in pkgutil.iter_modules(filters.__path__, filters.__name__ + "."):
    importlib.import_module(found.name).FilterModule().filters()
print(json.dumps(sorted(name for name in sys.modules if name.startswith(%r))))
""" % PREFIX


def test_filter_files_import_no_module_utils_until_a_filter_is_called():
    names = [found.name for found in pkgutil.iter_modules(filters.__path__)]
    assert len(names) >= 9, names
    done = subprocess.run([sys.executable, "-c", LOAD_ALL], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    imported = set(json.loads(done.stdout))
    assert imported - LIGHT - {PREFIX.rstrip(".")} == set()


def test_a_called_filter_imports_its_module_utils():
    call = LOAD_ALL.replace("print(", "from ansible_collections.kubeforge.cluster.plugins.filter.upgrade_problems import upgrade_problems\n"
                            "upgrade_problems({}, '1.36.4', '3.6.16')\nprint(", 1)
    done = subprocess.run([sys.executable, "-c", call], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert PREFIX + "_upgrade" in json.loads(done.stdout)
