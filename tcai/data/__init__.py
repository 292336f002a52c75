"""Rules as data: the YAML and text files beside this module, found and read one way.

Each file is reviewed like code and applied by one engine (docs/architecture.md lists
which module reads which file). Nothing is read at import: callers cache what they build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent


def data_file(name: str) -> Path:
    """The path of a shipped data file, e.g. `data_file("chat_rules.yaml")`."""
    return DATA_DIR / name


def load_yaml(name: str) -> Any:
    """Parse a shipped YAML file (safe loader). Callers cache what they build from it."""
    import yaml

    return yaml.safe_load(data_file(name).read_text(encoding="utf-8"))
