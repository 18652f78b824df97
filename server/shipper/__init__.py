"""Pixel."""
