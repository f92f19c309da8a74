# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the module tests share: a module's main() run in this process, and a module's documented options held
against its argument spec."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_main(module, args: dict, check_mode: bool = False, diff: bool = False) -> dict:
    """Run the module's main() with these options, in check mode or with diff when asked. Returns the result it
    printed."""
    out = io.StringIO()
    with patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(out.getvalue().strip().splitlines()[-1])


def compare(doc_options: dict, spec_options: dict, where: str = "", type_default: str | None = "str") -> None:
    """Assert that the documented options are those of the argument spec: the same names, and for each option the same
    type, default, choices, elements and required, and a description. Suboptions are held against options the same way.
    ``where`` starts each message. An option that leaves out its type counts as ``type_default``; with None, the
    documentation and the spec must both leave it out or both state it."""
    assert set(doc_options) == set(spec_options), f"{where}: {set(doc_options) ^ set(spec_options)}"
    for name, spec in spec_options.items():
        doc = doc_options[name]
        for key in ("type", "default", "choices", "elements"):
            missing = type_default if key == "type" else None
            assert doc.get(key, missing) == spec.get(key, missing), f"{where}{name}: {key}"
        assert bool(doc.get("required")) == bool(spec.get("required")), f"{where}{name}: required"
        assert doc.get("description"), f"{where}{name}: description"
        if "options" in spec:
            compare(doc["suboptions"], spec["options"], f"{name}.", type_default)
