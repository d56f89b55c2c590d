"""Resident memory of this process: current, and the peak since the last reset.

Linux keeps the peak (VmHWM) and resets it when "5" is written to /proc/self/clear_refs, which is exact
and free. Elsewhere a background thread samples the RSS every few milliseconds (short spikes may be missed).
"""

from __future__ import annotations

import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
MIB = 1024 * 1024


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_mib() -> float:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib / 1024
    import psutil

    return psutil.Process().memory_info().rss / MIB


class PeakRss:
    """``with PeakRss() as peak: ...`` then ``peak.mib``: the highest RSS seen inside the block."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.mib = 0.0
        self._exact = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        try:
            _CLEAR_REFS.write_text("5")
            self._exact = _status_kib("VmHWM") is not None
        except OSError:
            self._exact = False
        self.mib = rss_mib()
        if not self._exact:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.mib = max(self.mib, rss_mib())

    def __exit__(self, *exc) -> None:
        if self._exact:
            self.mib = max(self.mib, _status_kib("VmHWM") / 1024)
        else:
            self._stop.set()
            self._thread.join()
            self.mib = max(self.mib, rss_mib())
