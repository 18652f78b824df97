"""Maps the top-level folders onto one import namespace, `pixel`.

`pixel` is an implicit namespace package: server/ is `pixel.server`, app/ is `pixel.app` and
tracker/ is `pixel.tracker` (its built `dist/pixel.js` ships as package data). Sub-packages are
found automatically, so adding one needs no change here. Metadata lives in pyproject.toml.
"""

from setuptools import find_packages, setup

ROOTS = {"pixel.server": "server", "pixel.app": "app", "pixel.tracker": "tracker"}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, folder in ROOTS.items():
    packages.append(name)
    package_dir[name] = folder
    for sub in find_packages(folder, exclude=["node_modules*", "tests*"]):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir)
