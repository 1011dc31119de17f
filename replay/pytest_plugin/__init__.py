"""The pytest plugin (entry point ``wsshadow.replay.pytest_plugin.plugin``).

``plugin`` declares the options and the ``wsshadow_replay`` fixture;
``session`` holds the work: replaying a capture against the app under test
and checking it against the recording.
"""
