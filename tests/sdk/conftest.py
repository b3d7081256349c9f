"""The Python SDK is imported from its source folder (sdk/python), not installed.

That keeps the README's single `pip install -e '.[test]'` enough to run the suite and
tests the SDK exactly as checked out; `pip install ./sdk/python` is what its users run.
"""

from __future__ import annotations

import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk" / "python"
if str(SDK) not in sys.path:
    sys.path.insert(0, str(SDK))
