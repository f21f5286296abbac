"""Removals a tier could not apply, kept until it can: never undone when the tier comes back (E1).

A removal that failed on a tier (down, hung, read-only) is recorded in memory and durably in the
journals of the other durable tiers (disk, database), with its version. Before the tier is used
again, every removal it owes is applied; applying one is idempotent (it takes only entries older
than its version and leaves a tombstone), so a record applied twice, by two instances, or after a
newer put, never does harm — there are no record ids to reuse or forget. The journals are read at
start and again every staleness window, so a running instance learns what another one recorded.

The journals also keep the Redis floor: the removal counter Redis returned for the last removal
(redis_tier.py). A Redis below it has lost removals and is purged before it serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .store import ALL, Journal, Removal, StoreTier

log = logging.getLogger("reference.repairs")

Call = Callable[..., tuple[bool, Any]]  # (tier, operation, fn, *args) -> (ok, result); never raises


class Repairs:
    def __init__(
        self,
        tiers: list[str],
        journals: list[Journal],
        call: Call,
        poll_seconds: float,
        on_floor: Callable[[int], None] = lambda floor: None,
        on_learned: Callable[[Removal], None] = lambda removal: None,
    ) -> None:
        self._journals = journals
        self._on_learned = on_learned  # a removal another instance recorded: memory drops the key
        self._unsaved_floor = 0  # a floor seen by puts, written to the journals at the next poll
        self._on_floor = on_floor  # the Redis tier compares every new connection with it
        self._call = call
        self._poll_seconds = poll_seconds
        self.owed: dict[str, dict[tuple[str, str], int]] = {name: {} for name in tiers}  # per tier, read lock-free
        self._lock = threading.Lock()
        self._apply_locks = {name: threading.Lock() for name in tiers}
        self.unread = {j.name for j in journals}  # a tier serves only once every journal was read (may_serve)
        self._read_lock = threading.Lock()
        self.poll_due = float("-inf")  # time.monotonic() from which a get re-reads the journals (poll)
        self.floor = 0

    def load(self, at_start: bool = False) -> None:
        """Read every journal: removals owed (merged, newest version per key) and the Redis floor.
        At start a failure is not held against the journal tier's health: a corrupt SQLite file is
        replaced by that very failure, and the fresh one must take the next write."""
        for journal in self._journals:
            if at_start:
                try:
                    ok, records = True, journal.journal_load()
                except Exception as exc:  # logged, never raised (P5)
                    log.warning("tier %s: cannot read the journal (others serve once it is): %s", journal.name, exc)
                    continue
            else:
                ok, records = self._call(journal, "journal", journal.journal_load)
            if not ok:
                continue
            learned = []
            with self._lock:
                for tier, removal in records:
                    owed = self.owed.get(tier)
                    slot = (removal.content, removal.variant)
                    if owed is not None and owed.get(slot, 0) < removal.version:
                        owed[slot] = removal.version
                        learned.append(removal)
            for removal in learned:
                self._on_learned(removal)
            ok, floor = self._call(journal, "journal", journal.floor_get)
            if ok:
                self._raise(floor)
            self.unread.discard(journal.name)
        self.poll_due = time.monotonic() + self._poll_seconds

    def poll(self, now: float | None = None) -> None:
        """Re-read the journals once per staleness window (another instance may have recorded removals).
        `now`: time.monotonic() as the caller just read it."""
        now = time.monotonic() if now is None else now
        if now >= self.poll_due and self._read_lock.acquire(blocking=False):
            try:
                self.save_floor()
                self.load()
            finally:
                self._read_lock.release()

    def may_serve(self, tier: str) -> bool:
        """A journal unreadable so far may hold removals this tier owes: it serves once they are read."""
        if not self.unread or not self.unread - {tier}:  # the first test spares every hit a set
            return True
        if self._read_lock.acquire(blocking=False):  # no waiting behind a thread retrying a slow journal
            try:
                self.load()
            finally:
                self._read_lock.release()
        return not self.unread - {tier}

    def owes(self, tier: str) -> bool:
        return bool(self.owed[tier])

    def defer(self, tier: str, removal: Removal) -> bool:
        """Record a removal the tier missed; True when it is durable (a journal holds it)."""
        with self._lock:
            owed = self.owed[tier]
            slot = (removal.content, removal.variant)
            owed[slot] = max(owed.get(slot, 0), removal.version)
        durable = False
        for journal in self._journals:
            if journal.name != tier:
                durable = self._call(journal, "journal", journal.journal_add, tier, removal)[0] or durable
        return durable

    def apply(self, store: StoreTier) -> None:
        """Apply what the tier owes (raises the tier's error); afterwards its journal records go."""
        with self._apply_locks[store.name]:
            with self._lock:
                todo = [Removal(c, v, version) for (c, v), version in self.owed[store.name].items()]
            counters = []
            for removal in todo:
                if removal.content == ALL:
                    counters.append(store.clear(removal.version))
                else:
                    variant = None if removal.variant == ALL else removal.variant
                    counters.append(store.remove(removal.content, variant, removal.version))
            with self._lock:
                owed = self.owed[store.name]
                for removal in todo:
                    slot = (removal.content, removal.variant)
                    if owed.get(slot, 0) <= removal.version:
                        owed.pop(slot, None)
        if store.name == "redis" and todo:
            self.record_floor(max(int(c or 0) for c in counters))
        for journal in self._journals:
            if journal.name != store.name:
                self._call(journal, "journal", journal.journal_discard, store.name, todo)
        log.info("tier %s repaired: %d removals applied", store.name, len(todo))

    def record_floor(self, counter: int) -> bool:
        """Redis's removal counter after a removal, durably: True when a journal holds it (or none exists)."""
        self._raise(counter)
        durable = not self._journals
        for journal in self._journals:
            durable = self._call(journal, "journal", journal.floor_raise, counter)[0] or durable
        return durable

    def save_floor(self) -> None:
        if self._unsaved_floor > self.floor:
            self.record_floor(self._unsaved_floor)

    def note_floor(self, counter: int) -> None:
        """A counter a put returned: kept in memory now, written to the journals at the next poll."""
        self._unsaved_floor = max(self._unsaved_floor, counter)

    def _raise(self, floor: int) -> None:
        if floor > self.floor:
            self.floor = floor
            self._on_floor(floor)

    def pending_counts(self) -> dict[str, int]:
        with self._lock:
            return {name: len(owed) for name, owed in self.owed.items()}
