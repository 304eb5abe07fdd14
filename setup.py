"""Build hook: ship the standard mappings inside the package.

The repository keeps the standard mappings at its top (``mappings/``), where partners and
reviewers look for them. A wheel has no such place, so the build copies the folder into the
package as ``gateway/mappings/``; `gateway.mapping.files.mappings_root` finds either.
Everything else is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MAPPINGS = Path(__file__).resolve().parent / "mappings"
SHIPPED = ("*.yaml", "*.jmespath")


class BuildPyWithMappings(build_py):
    """build_py, plus mappings/ copied to gateway/mappings/ (not for editable installs)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads mappings/ in the checkout
        if not (MAPPINGS / "x12" / "850.yaml").is_file():
            raise SystemExit(f"the standard mappings are missing at {MAPPINGS}; the wheel would not translate")
        target = Path(self.build_lib) / "gateway" / "mappings"
        shutil.rmtree(target, ignore_errors=True)  # a file deleted from mappings/ must not ship
        for pattern in SHIPPED:
            for src in sorted(MAPPINGS.rglob(pattern)):
                dest = target / src.relative_to(MAPPINGS)
                self.mkpath(str(dest.parent))
                self.copy_file(str(src), str(dest))


setup(cmdclass={"build_py": BuildPyWithMappings})
