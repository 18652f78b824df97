"""The enrichment's declared step list (order the privacy guarantees rest on) and the one shared GC pause."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from pixel.server.enrich import Enricher
from pixel.server.settings import Settings


def test_the_steps_are_declared_in_the_order_the_privacy_guarantees_need(tmp_path: Path) -> None:
    enricher = Enricher(Settings(data_dir=tmp_path))
    try:
        assert [name for name, _ in enricher.steps] == [
            "site rules",
            "network columns",
            "device and bots",
            "privacy",
            "sources",
            "address scrub",
            "identity",
        ]
        assert enricher._steps == tuple(step for _, step in enricher.steps)
    finally:
        enricher.close()


def test_the_shipper_and_the_enrichment_share_one_gc_pause() -> None:
    from pixel.server import gcpause
    from pixel.server.enrich import pipeline
    from pixel.server.shipper import reader  # the shipper's reading of the spool, where it pauses the GC

    assert reader.gc_paused is gcpause.gc_paused
    assert pipeline.gc_paused is gcpause.gc_paused
    assert not hasattr(reader, "_gc_paused")


def test_gc_paused_restores_the_state_it_found_also_on_an_error() -> None:
    from pixel.server.gcpause import gc_paused

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner one leaves it off for the outer one
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # off on the way in: left off
    finally:
        gc.enable()
