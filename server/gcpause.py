"""`gc_paused()`: the cyclic garbage collector paused for the duration of a `with` block, as it was found.

Used where a batch of tens of thousands of live row dicts is built (the shipper reading the spool, the
enrichment of a batch): allocating them otherwise triggers the cyclic GC again and again, and each pass rescans
every live row (bench/README.md has the figures). Rows hold no reference cycles, so nothing is left for it to
free later. The GC is enabled again on the way out, also when the block raises, unless it was already off on
the way in (nesting keeps the outermost caller's state).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic GC inside the block; restore its state (enabled or not) after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
