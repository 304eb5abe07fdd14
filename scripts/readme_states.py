"""Paste gateway.states.diagram() into README.md's states block (tests/unit/test_states.py checks it)."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gateway.states import diagram  # noqa: E402

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text(encoding="utf-8")
new, n = re.subn(r"(<!-- states:begin -->\n```\n).*?(\n```\n<!-- states:end -->)", lambda m: m.group(1) + diagram() + m.group(2), text, flags=re.S)
if n != 1:
    sys.exit("README.md has no states block")
readme.write_text(new, encoding="utf-8")
