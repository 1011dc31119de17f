"""Everything that produces captures: the recording proxy, ASGI middleware, HAR import."""

__all__: list[str] = []
