"""Stop and abort on signals: SIGINT/SIGTERM ask the run to stop after the step under way.

The evaluation under way finishes and is stored, the agent stops after that step and is
saved, and the run ends with outcome ``interrupted``. A second SIGINT stops at once.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType

from nasframe.search.run import Run

__all__ = ["install_signal_handlers"]

# The search's one logger name, whichever module of the package logs (search.log shows it).
log = logging.getLogger("nasframe.search")


def install_signal_handlers(run: Run) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the run after the step under way; a second SIGINT aborts."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if run.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without waiting
        run.request_stop(name)
        log.warning("%s received: stopping after the evaluation under way is stored", name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
