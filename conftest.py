"""The project's pytest set-up lives in tiercheck.pytest_plugin (shared with `tiercheck verify`)."""

pytest_plugins = ["tiercheck.pytest_plugin", "integration.fixtures"]
