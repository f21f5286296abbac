"""Bug: a removal that a tier could not apply (tier down) is logged and forgotten.

No repair journal: invalidate() skips the failed tier, still reports success, and when the tier
comes back (Redis after a network outage, or restarted from an old snapshot) it serves the entry
that was invalidated. Expected to be caught by E1 (no resurrection after an outage).
"""

import logging

from tiercheck.reference.cache import MetadataCache

from . import build

log = logging.getLogger(__name__)


class ForgetfulCache(MetadataCache):
    def _defer(self, store, content, variant, version):
        log.warning("tier %s missed a removal of %s.%s; ignoring", store.name, content, variant)
        return True  # BUG: nothing recorded, nothing replayed when the tier is back


def factory(env):
    return build(ForgetfulCache, env)
