# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Go durations ("1m30s"), as the Kubernetes components read them in flags and config files (time.ParseDuration,
which metav1.Duration uses): the preflight's checks of the kubelet's shutdown times and the CIS check of its streaming
timeout read them here."""
from __future__ import annotations

import re

# The units, in seconds; the pattern of one number with its unit tries the longer units first ("ms" before "m").
GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
GO_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(" + "|".join(sorted(GO_DURATION_UNITS, key=len, reverse=True)) + ")")


def go_duration_seconds(value) -> float | None:
    """The seconds of a Go duration string ('1m30s' -> 90.0, '0' -> 0), or None when the component would refuse it (a
    number without its unit, anything not a string)."""
    if not isinstance(value, str):
        return None
    sign = -1 if value.startswith("-") else 1
    text = value[1:] if value[:1] in ("-", "+") else value
    if text == "0":
        return 0.0
    parts = GO_DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text or any(number in ("", ".") for number, _unit in parts):
        return None
    return sign * sum(float(number) * GO_DURATION_UNITS[unit] for number, unit in parts)
