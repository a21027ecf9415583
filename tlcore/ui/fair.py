"""Fair shares between sessions: one session's flood of calls waits on itself, not on everyone.

Gradio's queue serves first come, first served, and an endpoint without a concurrency limit runs
every call at once: a session that sends fifty predictions together takes fifty shares of the
CPU from the others. ``PerSession`` lets each session have a few calls running and a few more
waiting (as coroutines, holding no worker thread), and refuses the rest after a pause, so a
client that retries in a tight loop cannot spin. Sessions are told apart by Gradio's
``session_hash`` (a browser tab, a ``gradio_client.Client``); an entry lives only while its
session has a call in flight, so nothing accumulates.
"""
from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


class TooMany(Exception):
    """A session already has as many calls running and waiting as it may."""


@dataclass
class _Share:
    gate: asyncio.Semaphore
    calls: int = 0  # running and waiting


@dataclass
class PerSession:
    """At most ``running`` calls of one session at once, ``waiting`` more in line; others refused.

    Used from the event loop's thread only (Gradio awaits async handlers there): no lock.
    """

    running: int = 1
    waiting: int = 4
    refuse_after_s: float = 0.5  # a refused call is answered after this pause
    _shares: dict[str, _Share] = field(default_factory=dict, repr=False)

    @contextlib.asynccontextmanager
    async def turn(self, session: str | None):
        """Wait for ``session``'s turn (None: no session to count, no wait); raises TooMany."""
        if session is None:
            yield
            return
        share = self._shares.setdefault(session, _Share(asyncio.Semaphore(self.running)))
        if share.calls >= self.running + self.waiting:
            await asyncio.sleep(self.refuse_after_s)
            raise TooMany(f"This session already has {share.calls} calls running or waiting: "
                          f"wait for their answers (at most {self.running + self.waiting} at once).")
        share.calls += 1
        try:
            async with share.gate:
                yield
        finally:
            share.calls -= 1
            if share.calls == 0:
                del self._shares[session]

    def state_dict(self) -> dict:
        """Calls in flight per session (running and waiting), for tests and monitoring."""
        return {"running": self.running, "waiting": self.waiting,
                "calls": {k: s.calls for k, s in self._shares.items()}}
