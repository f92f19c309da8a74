# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""systemd units kept running and enabled, or stopped and disabled, with a few systemctl calls.

One ``systemctl show`` reads every unit; then at most one ``stop`` and one ``disable`` call, then
one ``enable``, one ``start`` (systemd starts the units together and returns once each is up) and
one ``reload``. The file_bundle module runs it after writing a role's units and configs, so that a role's
re-run is one task, not one per service.

A unit file that changed on disk since systemd read it (``NeedDaemonReload``, or ``daemon_reload``
asked by the caller because it wrote one) is read again first (``daemon-reload``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

SHOW_PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload")
INVOCATION_PROPERTY = "InvocationID"
# UnitFileState values for which `systemctl enable` has nothing to do (`systemctl is-enabled` exits 0).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "alias", "indirect", "generated", "transient"})
MASKED_STATES = frozenset({"masked", "masked-runtime"})
# ActiveState values of a unit that runs or is on its way up or down again.
RUNNING_STATES = frozenset({"active", "reloading", "refreshing"})


class UnitsError(KubeforgeError):
    """A unit that cannot be brought to its state, or a systemctl call that failed."""


@dataclasses.dataclass(frozen=True)
class UnitState:
    load: str
    active: str
    file: str
    need_reload: bool

    @property
    def found(self) -> bool:
        return self.load not in ("not-found", "")

    @property
    def running(self) -> bool:
        return self.active in RUNNING_STATES


def parse_unit_state(text: str) -> dict[str, str]:
    """One unit's ``systemctl show -p ...`` output (``Key=value`` lines) as a dict."""
    state = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            state[key.strip()] = value.strip()
    return state


def parse_show(text: str, count: int) -> list[UnitState]:
    """``systemctl show -p ... UNIT...`` output: one block of ``Key=value`` lines per unit, in the order asked,
    separated by blank lines."""
    blocks = [state for state in (parse_unit_state(block) for block in text.split("\n\n")) if state]
    if len(blocks) != count:
        raise UnitsError(f"systemctl show gave {len(blocks)} unit(s) for {count} asked: {text.strip()[:500]!r}")
    return [UnitState(load=block.get("LoadState", ""), active=block.get("ActiveState", ""),
                      file=block.get("UnitFileState", ""), need_reload=block.get("NeedDaemonReload") == "yes")
            for block in blocks]


def invocations_command(names) -> list[str]:
    """The ``systemctl show`` arguments that print each unit's state and invocation ID: systemd gives a unit a new
    one each time it starts (and keeps the last one once it stops)."""
    return ["show", "--property=ActiveState", f"--property={INVOCATION_PROPERTY}", "--", *names]


def parse_invocations(text: str, names) -> dict[str, str]:
    """{unit: invocation ID} of the units of ``names`` that run (or start or stop), from invocations_command's output;
    {} when it cannot be read."""
    names = list(names)
    blocks = [parse_unit_state(block) for block in text.split("\n\n") if block.strip()]
    if len(blocks) != len(names):
        return {}
    return {name: block[INVOCATION_PROPERTY] for name, block in zip(names, blocks)
            if block.get(INVOCATION_PROPERTY) and block.get("ActiveState") not in ("inactive", "failed", None)}


def unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


# What systemctl does for each kind of change, in the order plan() lists them.
STEP_COMMANDS = {"stopped": "stop", "disabled": "disable", "enabled": "enable", "started": "start", "reloaded": "reload"}


def plan(running, stopped, by_name: dict, reload_units=(), pending=()) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(problems, [(kind, units)] in STEP_COMMANDS' order) that bring the ``running`` units to enabled and active and the
    ``stopped`` ones, where installed, to inactive and disabled, from their states ``by_name``. ``reload_units``: running
    units to reload (their files changed); ``pending``: running units whose file the caller would create (check mode)."""
    problems, to_enable, to_start, to_reload = [], [], [], []
    for name in running:
        state = by_name[name]
        if not state.found and name not in pending:
            problems.append(f"{name}: no such unit")
        elif state.file in MASKED_STATES:
            problems.append(f"{name}: the unit is masked (systemctl unmask it to let kubeforge run it)")
        else:
            if state.file not in ENABLED_STATES:
                to_enable.append(name)
            if not state.running:
                to_start.append(name)
            elif name in reload_units:
                to_reload.append(name)
    to_stop = [name for name in stopped if by_name[name].found and by_name[name].active not in ("inactive", "failed")]
    to_disable = [name for name in stopped if by_name[name].found and by_name[name].file in ("enabled", "enabled-runtime")]
    # The units to stop first: a firewall of the host's own goes before kubeforge's starts.
    return problems, [("stopped", to_stop), ("disabled", to_disable), ("enabled", to_enable), ("started", to_start),
                      ("reloaded", to_reload)]


class UnitsBackend:
    """Brings ``running`` units to enabled and active and ``stopped`` ones (where installed) to inactive and disabled.

    ``reload_units``: units of ``running`` that are reloaded, not restarted, when the caller's files
    changed (a stopped one is started instead). ``run_command(argv) -> (rc, stdout, stderr)``.
    """

    def __init__(self, running: Iterable[str], stopped: Iterable[str] = (), reload_units: Iterable[str] = (),
                 run_command: Callable | None = None, check_mode: bool = False, systemctl: str = "systemctl") -> None:
        self.running = unique(running)
        self.stopped = unique(stopped)
        self.reload_units = unique(reload_units)
        both = sorted(set(self.running) & set(self.stopped))
        if both:
            raise UnitsError(f"units both to run and to stop: {', '.join(both)}")
        outside = sorted(set(self.reload_units) - set(self.running))
        if outside:
            raise UnitsError(f"units to reload must also be running units: {', '.join(outside)}")
        self.run_command = run_command
        self.check_mode = check_mode
        self.systemctl = systemctl

    def run(self, files_changed: bool = False, daemon_reload: bool = False, pending_units: Iterable[str] = ()) -> dict:
        """Returns {unit: [changes]} for the units that changed (or would in check mode).

        ``files_changed``: the caller changed files (reloads ``reload_units``); ``daemon_reload``: it
        wrote a unit file; ``pending_units``: running units whose file the caller would create (check mode), which
        systemd cannot know yet.
        """
        names = self.running + self.stopped
        if not names:
            return {}
        if daemon_reload and not self.check_mode:
            self._systemctl("daemon-reload")
        states = self._show(names)
        if any(state.need_reload for state in states) and not self.check_mode:
            self._systemctl("daemon-reload")
            states = self._show(names)
        pending = set(pending_units) if self.check_mode else set()
        problems, steps = plan(self.running, self.stopped, dict(zip(names, states)), self.reload_units if files_changed else (), pending)
        if problems:
            raise UnitsError("cannot run " + "; ".join(problems))
        changes: dict[str, list[str]] = {}
        for kind, units in steps:
            if not units:
                continue
            if not self.check_mode:
                self._systemctl(STEP_COMMANDS[kind], "--", *units)
            for name in units:
                changes.setdefault(name, []).append(kind)
        return {name: changes[name] for name in names if name in changes}

    def _show(self, names: list[str]) -> list[UnitState]:
        argv = ["show"] + [f"--property={name}" for name in SHOW_PROPERTIES] + ["--", *names]
        return parse_show(self._systemctl(*argv), len(names))

    def _systemctl(self, *args: str) -> str:
        if self.run_command is None:
            raise UnitsError("systemd units need a command runner")
        rc, out, err = self.run_command([self.systemctl, *args])
        if rc != 0:
            raise UnitsError(f"systemctl {' '.join(args)} failed: {(err or out).strip() or f'exit code {rc}'}")
        return out


def units_diff(changes: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """Diff lines (before, after) for the units that change."""
    before, after = [], []
    for name, kinds in changes.items():
        before.append(f"unit {name}: " + ", ".join(f"not {kind}" for kind in kinds))
        after.append(f"unit {name}: " + ", ".join(kinds))
    return before, after
