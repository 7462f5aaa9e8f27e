"""Which TensorRT the double pretends to be: ``ORINBENCH_TRT_DOUBLE`` = 8.5 | 8.6 | 10.3 | 11.4.

The version is fixed when the package is imported; the ``trt_double`` fixture re-imports it to
switch. Full version strings are those of the releases modelled (JetPack 5.1's 8.5.2.2, the 8.6.1
and 10.3.0 bindings wheels, JetPack 6's TensorRT is 10.3 too, and the 11.4 bindings wheel).
"""

from __future__ import annotations

import os

FULL_VERSIONS = {"8.5": "8.5.2.2", "8.6": "8.6.1", "10.3": "10.3.0", "11.4": "11.4.0.106"}
#: engine serialization version tags (made up; only "different between versions" matters)
SERIALIZATION_TAGS = {"8.5": 232, "8.6": 236, "10.3": 239, "11.4": 247}

SELECTED = os.environ.get("ORINBENCH_TRT_DOUBLE", "10.3")
if SELECTED not in FULL_VERSIONS:
    raise ImportError(
        f"ORINBENCH_TRT_DOUBLE={SELECTED!r}: the double models {', '.join(FULL_VERSIONS)}"
    )
VERSION = FULL_VERSIONS[SELECTED]
TAG = SERIALIZATION_TAGS[SELECTED]


def _tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


CURRENT = _tuple(SELECTED)


def has(since: str | None, until: str | None) -> bool:
    """True when a name that appeared in ``since`` and went in ``until`` exists in this version."""
    if since is not None and _tuple(since) > CURRENT:
        return False
    return not (until is not None and _tuple(until) <= CURRENT)
