"""The proxy fault tests reuse the recorder tests' upstream and candidate servers."""

from tests.recorders.conftest import candidate, upstream

__all__ = ["candidate", "upstream"]
