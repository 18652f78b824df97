"""One router per area; `pixel.server.api.app` mounts them under /api."""
