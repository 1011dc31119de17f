"""The engine of wsshadow, installed as ``wsshadow.replay``.

The folders follow the pipeline: ``capture`` (the model and the SQLite
store) → ``engine`` (replaying a capture's client side against a target) →
``diff`` (pure: normalize, align, compare, cancel noise) → ``report`` (the
JSON report and its renderers). ``shadow`` ties replay and diff together;
``cli``, ``pytest_plugin`` and ``demo`` sit on top. The public names a user
imports are in ``wsshadow`` itself; this package's ``__init__`` imports
nothing, so that importing the pure core never pulls in the store.
"""
