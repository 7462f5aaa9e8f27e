"""The jtop client run as its own process (``python -m orinbench.telemetry.sources.jtop_client``).

Kept apart so that only that process imports jtop; see ``sources/jtop.py`` and ``__main__.py``.
"""
