"""A checkpoint's model-card facts as data: what training logged, read the same way by train/, bench/ and app/.

Training stages append one JSON object per line to ``<stage dir>/metrics.jsonl`` (``train.loop.MetricsLog``):
a ``{"event": "start", ...}`` record, step records (``loss``, ``lr``, ``minutes``) and ``{"event": "eval", ...}``
records with held-out figures.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics_log(path: str | Path) -> list[dict]:
    """The records of a stage's ``metrics.jsonl`` in order; [] when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
