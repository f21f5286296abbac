"""`import reference` from the repository root, for scripts written before the reference moved to
`tiercheck.reference` (the bug reproductions in ../shared/repro run this way). Not installed: the wheel
holds only `tiercheck`, so a user's own `reference` package is never shadowed."""

from tiercheck.reference import *  # noqa: F403
from tiercheck.reference import __all__, factory  # noqa: F401
