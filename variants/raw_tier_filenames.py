"""Bug: the key carries the tier string as given, and the disk tier names its files after it.

"Readable cache directories": entries live in `<cache_dir>/by-tier/<tier>/<content hash>`, so a tier
string such as `../../escape` writes (and later deletes) files outside cache_dir — the original
MetaExtract cache built `cache_dir / f"{tier}/{file_hash}.json"` the same way.
Expected to be caught by E5 (hostile tier strings never touch anything outside cache_dir).

Safety net (not part of the bug): a path outside the *parent* of cache_dir is refused, so a run of
this variant can escape cache_dir — the finding — but never the test's own temporary directory.
"""

import os
import shutil
from pathlib import Path

from tiercheck.reference.cache import MetadataCache
from tiercheck.reference.disk_tier import DiskTier
from tiercheck.reference.keys import CacheKey
from tiercheck.reference.store import TierError

from . import build, swap_store


class TierNamedDiskTier(DiskTier):
    def _by_tier(self):
        return self.root.parent / "by-tier"

    def _path(self, key):
        cache_dir = str(self.root.parent)
        path = os.path.normpath(os.path.join(cache_dir, "by-tier", key.variant, key.content))  # BUG: raw tier
        if not path.startswith(os.path.dirname(cache_dir) + os.sep):
            raise OSError(f"refusing to touch {path!r}")  # the harness's safety net, see the docstring
        return Path(path)

    def _walk(self):
        base = self._by_tier()
        for path in base.rglob("*") if base.is_dir() else ():
            if path.is_file() and not path.name.startswith(".tmp-"):
                yield CacheKey(path.name, str(path.parent.relative_to(base))), path

    def _tomb_name(self, variant):
        return "ALL" if variant == "*" else variant.encode("utf-8", "surrogatepass").hex()  # tombstones stay inside

    def remove(self, content, variant, version):
        if variant is not None:
            return super().remove(content, variant, version)
        try:
            for key, _ in list(self._walk()):
                if key.content == content:
                    self._unlink(key)
        except OSError as exc:
            raise TierError(f"disk remove: {exc}") from exc

    def clear(self, version):
        super().clear(version)
        shutil.rmtree(self._by_tier(), ignore_errors=True)


class RawTierCache(MetadataCache):
    def _key(self, file_path, tier):
        key = super()._key(file_path, tier)
        return None if key is None else CacheKey(key.content, tier)  # the tier string, not its digest


def factory(env):
    return build(RawTierCache, env, stores=swap_store("disk", TierNamedDiskTier))
