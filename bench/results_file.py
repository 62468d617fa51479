"""Where every bench script writes its results: ``bench/results/<name>-<date>-<time>.json``."""

from __future__ import annotations

import json
import os
import time
import typing as t

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def write_results(results: t.Any, name: str, path: str | None = None) -> str:
    """``results`` as indented JSON in ``path`` (by default a new file in :data:`RESULTS`); the path written."""
    os.makedirs(RESULTS, exist_ok=True)
    path = path or os.path.join(RESULTS, time.strftime(f"{name}-%Y%m%d-%H%M%S.json"))
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    return path
