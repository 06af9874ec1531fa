"""Maps the repository's root folders onto the one import package `shapeflow` (see DESIGN.md).

`compiler/` is `shapeflow`, `ir/` is `shapeflow.ir`, and so on; every folder below them with an
`__init__.py` becomes a subpackage. The mapping is computed so that adding a subpackage needs no edit here.
"""

import os

from setuptools import setup

ROOTS = {
    "shapeflow": "compiler",
    "shapeflow.ir": "ir",
    "shapeflow.passes": "passes",
    "shapeflow.codegen": "codegen",
    "shapeflow.runtime": "runtime",
    "shapeflow.fuzz": "fuzz",
}


def find_packages_under(package: str, folder: str) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "__"))]
        if "__init__.py" not in filenames:
            continue
        rel = os.path.relpath(dirpath, folder)
        found.append(package if rel == "." else package + "." + rel.replace(os.sep, "."))
    return found


packages = [p for pkg, folder in ROOTS.items() for p in find_packages_under(pkg, folder)]
setup(packages=packages, package_dir=ROOTS)
