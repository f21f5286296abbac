"""Bug: the cache starts a background janitor thread and shutdown() never stops it.

A periodic cleanup thread (`while not stop.wait(60): self.cleanup()`) whose stop event nobody sets:
every cache created and shut down leaves one more thread behind (and it keeps using closed
tiers). Expected to be caught by P12 (shutdown leaves no thread behind).
"""

import threading

from tiercheck.reference.cache import MetadataCache

from . import build


class JanitorCache(MetadataCache):
    def __init__(self, config=None, **overrides):
        super().__init__(config, **overrides)
        self._janitor_stop = threading.Event()
        self._janitor = None

    def _start(self):
        super()._start()
        if self._janitor is None:
            self._janitor = threading.Thread(target=self._janitor_loop, name="cache-janitor", daemon=True)
            self._janitor.start()

    def _janitor_loop(self):
        while not self._janitor_stop.wait(60.0):
            try:
                self.cleanup()
            except Exception:
                return

    # BUG: shutdown() is inherited unchanged: self._janitor_stop is never set, the thread lives on


def factory(env):
    return build(JanitorCache, env)
