"""A session's runs, by name: every run stays listed, a few keep their weights in memory."""
from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..api import ImageData, load_run, RunResult, TransferNet

# Every run of a session stays listed (its files are on disk until the session ends); only this
# many keep their weights in memory, the others reload from their folder when next used.
MAX_LOADED = 6


@dataclass
class RunRecord:
    name: str
    result: RunResult
    data: ImageData  # the dataset it was trained and tested on (the gallery's images)
    folder: Path


class RunStore(Mapping):
    """Run name -> RunRecord, in the order the runs were added (read as a dict: ``runs[name]``,
    ``name in runs``, ``list(runs)``)."""

    def __init__(self):
        self._runs: dict[str, RunRecord] = {}
        self._loaded: list[str] = []  # runs whose weights are in memory, least recently used first
        self.started = 0  # numbers run names: unique even after runs are deleted

    def __getitem__(self, name: str) -> RunRecord:
        return self._runs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._runs)

    def __len__(self) -> int:
        return len(self._runs)

    def new_name(self, label: str) -> str:
        """A name (and folder name) no run of this session has had."""
        self.started += 1
        return f"{self.started}-{label}"[:60]

    def add(self, record: RunRecord) -> None:
        self._runs[record.name] = record
        self._used(record.name)

    def model(self, name: str) -> TransferNet:
        """A run's model: in memory, or read back from its folder (then kept, within MAX_LOADED)."""
        result = self._runs[name].result
        if result.model is None:
            result.model, _ = load_run(result.checkpoint)
        self._used(name)
        return result.model

    def _used(self, name: str) -> None:
        """``name`` was just used: past MAX_LOADED, the least recently used saved run lets go of its weights."""
        self._loaded = [n for n in self._loaded if n != name and n in self._runs] + [name]
        for old in self._loaded[:-MAX_LOADED]:
            result = self._runs[old].result
            if result is not None and result.checkpoint:  # only a saved run can be read back
                result.model = None
        self._loaded = self._loaded[-MAX_LOADED:]

    def remove(self, name: str) -> RunRecord:
        """Forget a run and delete its folder."""
        record = self._runs.pop(name)
        shutil.rmtree(record.folder, ignore_errors=True)
        return record

    def clear(self) -> None:
        """Forget every run (their folders go with the session's)."""
        self._runs.clear()
        self._loaded.clear()

    def state_dict(self) -> dict:
        """The runs' names and folders, which keep their weights in memory, and the name counter."""
        return {"started": self.started, "runs": {n: str(r.folder) for n, r in self._runs.items()},
                "loaded": list(self._loaded)}
