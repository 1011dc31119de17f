"""The one version source: the build reads it (pyproject ``dynamic``), so does ``wsshadow``."""

__version__ = "0.2.0.dev0"
