"""What the benchmarks share to report a result: :func:`write_json` writes its JSON file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any, **dumps: Any) -> None:
    """Write ``data`` to ``path`` as JSON indented by two (``dumps`` go to :func:`json.dumps`), making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, **dumps))
