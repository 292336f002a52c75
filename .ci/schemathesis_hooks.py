"""Schemathesis hooks for .ci/schemathesis_run.py: the widget token on the routes that need it.

The token was fetched by the driver from the widget config route (with an allowed
Origin), as the widget does, and is passed in TCAI_FUZZ_WIDGET_TOKEN. Only the chat and
booking-click routes get it; schemathesis's `ignored_auth` check still sends them
requests without it and expects a 401.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis


@schemathesis.auth(refresh_interval=None, retry_on=[]).apply_to(
    path_regex=r"^/api/(chat/|booking/click)"
)
class WidgetToken:
    def get(self, case: Any, context: Any) -> str:
        return os.environ["TCAI_FUZZ_WIDGET_TOKEN"]

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
