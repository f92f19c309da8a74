# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The PKI's error type: one message for the operator, plus every problem when there are several."""

from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError


class PkiError(KubeforgeError):
    """A problem with a certificate, a key or the options describing them.

    errors lists every problem found (for a batch, one line per bad entry); str() of the
    exception is a summary that includes them all.
    """

    def __init__(self, msg: str, errors: list[str] | None = None) -> None:
        super().__init__(msg)
        self.errors = list(errors) if errors else [msg]
