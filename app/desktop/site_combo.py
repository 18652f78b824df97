"""The site switcher of the owner pages (Goals and funnels, Journeys): one way to fill it from `/api/sites`."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox

from pixel.app.client.site_admin import site_label


def fill_site_combo(combo: QComboBox, sites: list[dict[str, Any]]) -> None:
    """Put `sites` in `combo` (labelled as the site pages label them, the site id as item data), keeping the site
    shown before when it is still listed, else the first. Emits no signal: the caller loads what follows."""
    keep = combo.currentData()
    ids = [s["id"] for s in sites]
    combo.blockSignals(True)
    try:
        combo.clear()
        for s in sites:
            combo.addItem(site_label(s), s["id"])
        combo.setCurrentIndex(ids.index(keep) if keep in ids else 0)
    finally:
        combo.blockSignals(False)
