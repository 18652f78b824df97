"""The built JS tracker, shipped as package data so the collector serves it without Node."""

from importlib.resources import files
from importlib.resources.abc import Traversable


def dist_file(name: str = "pixel.js") -> Traversable:
    """The built tracker file `name` inside `tracker/dist/`."""
    return files(__name__).joinpath("dist", name)
