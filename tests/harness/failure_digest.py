# SPDX-License-Identifier: GPL-3.0-or-later
"""Print what failed in a `make test` log, for the end of a CI run: CI keeps only the last lines of
its output, and a molecule scenario's destroy step (a hundred lines) follows the step that failed.

Kept: pytest's failure lines (`FAILED`/`ERROR` test ids, `E   ` assertion lines, failure headers),
Ansible's `fatal:` lines and make's error, in log order, each once. A task's output that Ansible
printed as one JSON string (a command's stdout, with \\n escapes) is split into its lines first.

Usage: failure_digest.py LOG [MAX_LINES]"""
from __future__ import annotations

import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The box molecule draws around a step's output, and the quoting of a YAML list shown by debug.
DECORATION = re.compile(r"^[\s│└┌─]*(?:- )?['\"]?")
KEPT = (
    re.compile(r"^(FAILED|ERROR) \S+::\S+"),          # pytest's short summary
    re.compile(r"^E {3}"),                            # pytest's assertion lines
    re.compile(r"^_{3,} \S+ _{3,}$"),                 # pytest's header of a failed test
    re.compile(r"^=+ .*\b(failed|error|errors)\b.* in [0-9.]+s"),  # pytest's last line when something failed
    re.compile(r"^fatal: \["),                        # an Ansible task that failed
    re.compile(r"^\[ERROR\]: "),                       # and why
    re.compile(r"^make: \*\*\*"),
)
# The end of a quoted YAML item or of a JSON string (and the objects it closes).
QUOTE_END = re.compile(r"""['"][,}\]]*$""")
LINE_WIDTH = 400


def lines_of(text: str) -> list[str]:
    lines = []
    for raw in ANSI.sub("", text).splitlines():
        for part in raw.split("\\n"):
            lines.append(QUOTE_END.sub("", DECORATION.sub("", part).rstrip()))
    return lines


def digest(text: str, max_lines: int = 60) -> list[str]:
    kept, seen = [], set()
    for line in lines_of(text):
        if any(pattern.search(line) for pattern in KEPT) and line not in seen:
            seen.add(line)
            kept.append(line[:LINE_WIDTH])
    return kept[-max_lines:]


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    print("\n".join(digest(text, int(argv[2]) if len(argv) > 2 else 60)) or "(no failure lines found in the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
