# -*- coding: utf-8 -*-
# Copyright: kubeforge developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""EtcdError: what every etcd or gateway failure becomes, with the gRPC code when there is one."""

from __future__ import annotations

from ansible_collections.kubeforge.cluster.plugins.module_utils._errors import KubeforgeError

# gRPC status codes the callers look at (google.golang.org/grpc/codes).
INVALID_ARGUMENT = 3
NOT_FOUND = 5
FAILED_PRECONDITION = 9
OUT_OF_RANGE = 11
UNAVAILABLE = 14
# Not a gRPC code: the transport could not reach any endpoint, or a stream broke off.
TRANSPORT = -1


class EtcdError(KubeforgeError):
    """An etcd call failed.

    code is the gRPC status code etcd answered (TRANSPORT when no answer came), message etcd's
    own text, status the HTTP status (0 without one), endpoint the URL that answered. str() is
    one line for the operator. result carries partial results a module reports on failure.
    """

    def __init__(self, message: str, code: int = TRANSPORT, status: int = 0, endpoint: str = "",
                 result: dict | None = None) -> None:
        self.message = message
        self.code = code
        self.status = status
        self.endpoint = endpoint
        self.result = dict(result or {})
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" ({self.endpoint})" if self.endpoint else ""
        code = f" [code {self.code}]" if self.code != TRANSPORT else ""
        return f"{self.message}{code}{where}"

    @property
    def compacted(self) -> bool:
        """The revision asked for was compacted away."""
        return self.code == OUT_OF_RANGE and "compacted" in self.message

    def has(self, text: str) -> bool:
        """etcd's message contains text (etcd's messages are stable across 3.5 and 3.6)."""
        return text in self.message
