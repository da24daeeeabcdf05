"""pytest runs the examples of the guide's pages (``--doctest-glob=*.rst``); the build's own
files are not tests."""

collect_ignore = ["conf.py", "_ext"]
collect_ignore_glob = ["_build/*", "api/*"]
