"""Build llmtap: one import package whose subpackages live in root folders.

The Cython extensions are discovered (every ``*.pyx`` under core/ and gateway/)
so adding a native module never means editing this file. ``LLMTAP_NO_EXTENSIONS=1``
skips compilation; the pure-Python twins then serve (tests refuse that unless
the same variable is set when they run).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).parent
PACKAGE_DIRS = {
    "llmtap": "llmtap",
    "llmtap.core": "core",
    "llmtap.ext": "ext",
    "llmtap.gateway": "gateway",
}


def _packages() -> dict[str, str]:
    """Map every package (including nested ones) to its folder."""
    found: dict[str, str] = {}
    for name, folder in PACKAGE_DIRS.items():
        base = ROOT / folder
        for init in sorted(base.rglob("__init__.py")):
            rel = init.parent.relative_to(base)
            dotted = ".".join((name, *rel.parts)) if rel.parts else name
            found[dotted] = str(Path(folder, *rel.parts))
    return found


def _cython_include_path() -> list[str]:
    """Cython looks a module's .pxd up by its dotted name (llmtap.core._x ->
    llmtap/core/_x.pxd), which does not exist in the source tree: mirror the
    installed layout with symlinks so cimports across modules resolve."""
    top = ROOT / "build" / "cython-include" / "llmtap"
    top.mkdir(parents=True, exist_ok=True)
    (top / "__init__.pxd").touch()
    for name, folder in PACKAGE_DIRS.items():
        if name == "llmtap":
            continue
        link = top / name.rpartition(".")[2]
        if not link.is_symlink():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    return [str(top.parent)]


def _extensions() -> list[Extension]:
    if os.environ.get("LLMTAP_NO_EXTENSIONS"):
        return []
    from Cython.Build import cythonize

    exts = []
    for name, folder in PACKAGE_DIRS.items():
        for pyx in sorted((ROOT / folder).rglob("*.pyx")):
            rel = pyx.relative_to(ROOT / folder).with_suffix("")
            dotted = ".".join((name, *rel.parts))
            exts.append(
                Extension(
                    dotted,
                    [str(pyx.relative_to(ROOT))],
                    extra_compile_args=["-O3"],
                )
            )
    return cythonize(
        exts,
        include_path=_cython_include_path(),
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
    )


packages = _packages()
setup(
    packages=sorted(packages),
    package_dir=packages,
    ext_modules=_extensions(),
)
