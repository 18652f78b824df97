"""Pixel server: collector, spool, shipper, enrichment, store and API."""
