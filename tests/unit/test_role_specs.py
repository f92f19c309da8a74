# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role's meta/argument_specs.yml matches its defaults/main.yml exactly: same names, same defaults, documented."""
from __future__ import annotations

import os

import pytest
import yaml

ROLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")
TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "path": str, "raw": object}


def _roles():
    return sorted(name for name in os.listdir(ROLES) if os.path.isdir(os.path.join(ROLES, name)))


def _load(role: str, *parts: str):
    path = os.path.join(ROLES, role, *parts)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_there_are_roles():
    assert "prepare" in _roles() and "pki" in _roles()


@pytest.mark.parametrize("role", _roles())
def test_argument_specs_match_defaults(role):
    defaults = _load(role, "defaults", "main.yml") or {}
    specs = _load(role, "meta", "argument_specs.yml")
    assert specs is not None, f"roles/{role} has no meta/argument_specs.yml"
    options = specs["argument_specs"]["main"].get("options") or {}
    assert set(options) == set(defaults), (
        f"roles/{role}: only in argument_specs: {sorted(set(options) - set(defaults))}; only in defaults: {sorted(set(defaults) - set(options))}")
    for name, option in options.items():
        description = " ".join(option.get("description") or []) if isinstance(option.get("description"), list) else option.get("description")
        assert description and description.strip() != name, f"roles/{role}: {name} has no description (its name is none)"
        assert option.get("default") == defaults[name], f"roles/{role}: {name} defaults to {defaults[name]!r} but its spec says {option.get('default')!r}"
        kind = option.get("type", "str")
        assert isinstance(defaults[name], TYPES[kind]), f"roles/{role}: {name} is a {kind} but defaults to {defaults[name]!r}"
        if "choices" in option:
            assert defaults[name] in option["choices"], f"roles/{role}: {name} default not in its choices"


@pytest.mark.parametrize("role", _roles())
def test_role_readme_lists_every_option(role):
    readme = os.path.join(ROLES, role, "README.md")
    assert os.path.exists(readme), f"roles/{role} has no README.md"
    with open(readme, encoding="utf-8") as handle:
        text = handle.read()
    options = (_load(role, "meta", "argument_specs.yml")["argument_specs"]["main"].get("options") or {})
    assert [name for name in options if f"`{name}`" not in text] == []
