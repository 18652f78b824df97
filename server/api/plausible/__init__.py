"""Plausible Stats API v2 compatibility: `POST /api/v2/query` (schema in `schema`, execution in `run`)."""
