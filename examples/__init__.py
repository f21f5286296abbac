"""Examples of using tiercheck (not installed with the package: run them from a checkout)."""
