"""Pixel desktop side: the Qt-free provisioning core and the PySide6 GUI."""
