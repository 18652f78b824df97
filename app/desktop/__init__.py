"""`pixel-desktop`: a PySide6 + pyqtgraph GUI over the provisioning core (`pixel.app.stack`) and the
analytics API (`pixel.app.client`). Thin by design: no Docker or HTTP call on the GUI thread."""
