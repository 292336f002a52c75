"""DEMO_SAFE_MODE: demo workspaces are protected from destructive operations.

Owns the one rule every destructive command applies: with `Settings.demo_safe_mode` on, a
workspace whose status is "demo" is neither erased from, purged nor deleted. Commands ask
`is_protected` when they can skip a workspace and go on (retention skips it and says so),
and call `ensure_not_demo` when the operator named the workspace or the data in it (a
privacy erase refuses as a whole).

Deliberately not here: reading the settings (callers pass the flag down, nothing is read
at import) and deciding what counts as destructive (each command knows its own writes).
"""

from __future__ import annotations

from tcai.errors import Forbidden

DEMO_STATUS = "demo"


def is_protected(status: str, *, demo_safe_mode: bool) -> bool:
    """True when DEMO_SAFE_MODE is on and a workspace with this status is a demo."""
    return demo_safe_mode and status == DEMO_STATUS


def ensure_not_demo(slug: str, status: str, *, demo_safe_mode: bool, action: str) -> None:
    """Raise `Forbidden` when `action` would touch a protected demo workspace."""
    if is_protected(status, demo_safe_mode=demo_safe_mode):
        raise Forbidden(
            f"DEMO_SAFE_MODE is on: refusing to {action} in demo workspace '{slug}'; "
            "turn DEMO_SAFE_MODE off to allow it"
        )
