"""One writer per output folder: :class:`RunFolderLock`, and checks of output paths.

``nasframe search``, ``bench run``, ``bench build`` and ``finalize`` write a folder over
minutes or days. Two processes writing one folder would corrupt it (two step logs
interleaved in one ``steps.csv``) or one would move the other's files away. So each
takes :class:`RunFolderLock` on its folder before it moves, replaces or writes any file
there, and holds it to the end; a second process is refused at once, in one line naming
the folder and the process that holds it (:class:`FolderBusyError`).

The lock is an operating-system lock (``flock``) on ``.nasframe.lock`` in the folder;
the file holds the holder's PID, host name and command line, for the refusal message.
The operating system releases the lock when its process ends, however it ends: a lock
left by a killed process (``kill -9``, a crash, a lost power) never blocks the next run.
The file is removed when the lock is released.

:func:`check_folder_path` and :func:`check_file_path` say in one line, before any work
starts, that an output path cannot be created (a parent is a file, no permission).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from nasframe.errors import FolderBusyError, NasframeError

__all__ = [
    "LOCK_FILE",
    "FolderBusyError",
    "RunFolderLock",
    "check_file_path",
    "check_folder_path",
]

#: The lock file's name in a locked folder.
LOCK_FILE = ".nasframe.lock"

try:  # POSIX: flock, released by the OS when the holding process ends
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


# The folders this process has locked: folder -> [lock, depth]. A command that locks its
# folder and then calls code that locks it again (the API inside the CLI) nests.
_HELD: dict[Path, list[Any]] = {}
_HELD_GUARD = threading.Lock()


def _command_line() -> str:
    """This process's command line as the user typed it (``nasframe search ...``)."""
    argv = list(sys.argv)
    if not argv:
        return Path(sys.executable).name
    program = Path(argv[0])
    # ``python -m nasframe`` shows as .../nasframe/__main__.py; the console script as nasframe
    if program.name == "__main__.py":
        first = program.parent.name or "python"
    elif program.name in ("-c", ""):
        first = f"{Path(sys.executable).name} -c"
    else:
        first = program.name
    text = shlex.join([first, *argv[1:]]) if argv[1:] else first
    return text if len(text) <= 200 else text[:197] + "..."


class RunFolderLock:
    """An exclusive, non-waiting lock on ``folder`` (created if missing).

    Locks nest within one process (a command that holds its folder may call code that
    locks it again). A folder the lock created and nothing was written into is removed
    again on release.

    Use it as a context manager, or :meth:`acquire` and :meth:`release`::

        with RunFolderLock(output):
            ...  # the only process writing ``output``

    Args:
        folder: the folder to lock; created with its parents if missing.
        hint: what the refusal suggests (default: ``wait for it or choose another
            --output``).

    Raises:
        FolderBusyError: (from :meth:`acquire`) another process holds the lock.
        NasframeError: the folder cannot be created.
    """

    def __init__(self, folder: Path | str, *, hint: str = "") -> None:
        self.folder = Path(folder)
        self.hint = hint or "wait for it or choose another --output"
        self._fd: int | None = None
        self._soft: Any = None  # the filelock fallback where there is no flock
        self._key: Path | None = None
        self._created = False  # whether acquiring created the folder

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.folder / LOCK_FILE

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._key is not None

    def __enter__(self) -> RunFolderLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock now, or raise :class:`FolderBusyError` (never waits)."""
        if self.held:
            return
        check_folder_path(self.folder)
        created = not self.folder.is_dir()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise NasframeError(
                f"{self.folder}: cannot create the folder: {exc.strerror or exc}"
            ) from None
        key = self.folder.resolve()
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key][1] += 1
                self._key = key
                return
            if fcntl is not None:
                self._fd = self._flock()
            else:  # pragma: no cover - Windows
                self._soft = self._filelock()
            _HELD[key] = [self, 1]
            self._key = key
            self._created = created

    def release(self) -> None:
        """Release the lock (and remove the lock file); a no-op when not held."""
        key = self._key
        if key is None:
            return
        self._key = None
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] > 0:
                return
            del _HELD[key]
            owner: RunFolderLock = entry[0]
            owner._unlock()

    # -- the OS lock ---------------------------------------------------------------------

    def _flock(self) -> int:
        assert fcntl is not None
        path = self.path
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise NasframeError(
                    f"{self.folder}: cannot create the lock file {LOCK_FILE}: {exc.strerror or exc}"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._busy(holder) from None
            # The file may have been removed (and another created) between the open and
            # the lock, by a holder releasing: then this lock guards nothing; try again.
            try:
                same = path.stat().st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_holder_info()) + "\n").encode("utf-8"))
        os.fsync(fd)
        return fd

    def _filelock(self) -> Any:  # pragma: no cover - Windows
        import filelock

        info = self.folder / (LOCK_FILE + ".holder")
        soft = filelock.FileLock(str(self.path), timeout=0)
        try:
            soft.acquire()
        except filelock.Timeout:
            try:
                holder = json.loads(info.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                holder = {}
            raise self._busy(holder) from None
        info.write_text(json.dumps(_holder_info()) + "\n", encoding="utf-8")
        return soft

    def _unlock(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # Remove the file while holding the lock: a process that opened it meanwhile
            # sees, once it has the lock, that the path is gone, and opens a new file.
            with contextlib.suppress(OSError):
                self.path.unlink()
            os.close(fd)  # releases the flock
            if self._created:
                # a command that failed before writing anything leaves no empty folder
                with contextlib.suppress(OSError):
                    self.folder.rmdir()
        if self._soft is not None:  # pragma: no cover - Windows
            soft, self._soft = self._soft, None
            (self.folder / (LOCK_FILE + ".holder")).unlink(missing_ok=True)
            soft.release()

    def _busy(self, holder: dict[str, Any]) -> FolderBusyError:
        return FolderBusyError(
            f"{self.folder}: another nasframe process ({describe_holder(holder)}) is "
            f"writing this folder; {self.hint}"
        )


def _forget_in_child() -> None:
    """In a forked child: drop the parent's locks (its copies of their files).

    The lock belongs to the process that took it: a worker forked by it (``bench run
    --jobs``) must not keep the folder locked after that process has ended.
    """
    global _HELD_GUARD
    _HELD_GUARD = threading.Lock()  # another thread of the parent may have held it
    for lock, _ in _HELD.values():
        if lock._fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock._fd)  # closes the child's copy only: the parent keeps the lock
            lock._fd = None
        lock._soft = None
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _holder_info() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": _command_line(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _read_holder(fd: int) -> dict[str, Any]:
    """The holder's information from the lock file; ``{}`` if it cannot be read."""
    # The holder writes it just after taking the lock: give it a moment.
    for attempt in range(20):
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 65536).decode("utf-8", errors="replace")
            holder = json.loads(text)
            if isinstance(holder, dict):
                return holder
        except (OSError, ValueError):
            pass
        if attempt < 19:
            time.sleep(0.01)
    return {}


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid 1234: nasframe search ...`` (with ``on HOST`` for another host)."""
    if not holder.get("pid"):
        return "pid unknown"
    where = ""
    host = holder.get("host")
    if host and host != socket.gethostname():
        where = f" on {host}"
    command = str(holder.get("command") or "").strip()
    return f"pid {holder['pid']}{where}: {command}" if command else f"pid {holder['pid']}{where}"


def _blocker(path: Path) -> tuple[Path, str] | None:
    """The nearest existing ancestor of ``path`` (itself included) that prevents creating
    it, and why; ``None`` when it can be created."""
    current = path
    while True:
        if current.exists():
            if not current.is_dir():
                return current, "is a file, not a folder"
            if not os.access(current, os.W_OK | os.X_OK):
                return current, "is a folder you cannot write to"
            return None
        if current.is_symlink():  # a dangling link
            return current, "is a broken symbolic link"
        parent = current.parent
        if parent == current:
            return None
        current = parent


def check_folder_path(path: Path | str, what: str = "") -> None:
    """Refuse, in one line, an output folder that does not exist and cannot be created.

    An existing folder passes (whether this user can write into it is checked for a
    missing one only: the writes name their files). Nothing is created.

    Args:
        path: the folder.
        what: the option or key that named it, e.g. ``--output``, for the message
            (``runs/x (--output): cannot create this folder: runs is a file, ...``).

    Raises:
        NasframeError: ``path`` is a file, or a parent of it is a file or a folder that
            cannot be written.
    """
    path = Path(path)
    label = f"{path} ({what})" if what else str(path)
    if path.is_dir():
        return
    if path.exists():
        raise NasframeError(f"{label}: exists and is not a folder; choose another folder")
    found = _blocker(path.parent)
    if found is not None:
        blocker, why = found
        raise NasframeError(f"{label}: cannot create this folder: {blocker} {why}")


def check_file_path(path: Path | str, what: str = "") -> None:
    """Refuse, in one line, an output file that cannot be written (a folder there, or a
    parent folder that cannot be created). Nothing is created.

    Raises:
        NasframeError: ``path`` is a folder, or its folder cannot be created.
    """
    path = Path(path)
    label = f"{path} ({what})" if what else str(path)
    if path.is_dir():
        raise NasframeError(f"{label}: is a folder; give a file name")
    if path.parent.is_dir():
        if path.exists() or os.access(path.parent, os.W_OK | os.X_OK):
            return
        raise NasframeError(f"{label}: cannot write: {path.parent} is a folder you cannot write to")
    found = _blocker(path.parent)
    if found is not None:
        blocker, why = found
        raise NasframeError(f"{label}: cannot create its folder: {blocker} {why}")


def move_aside(folder: Path, names: Iterable[str]) -> Path:
    """Move the files ``names`` of ``folder`` into a new ``replaced-<time>/`` folder in it.

    What ``search --force`` and ``bench run --force`` do with an earlier run's files.
    Replacements within one second get ``replaced-<time>-2/``, ``-3/``, ...: a replaced
    run is never overwritten, however fast replacements come. Returns the folder.
    """
    import datetime

    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    target = folder / f"replaced-{stamp}"
    number = 1
    while True:
        try:
            target.mkdir()  # atomic: two processes never claim the same folder
            break
        except FileExistsError:
            number += 1
            target = folder / f"replaced-{stamp}-{number}"
    for name in names:
        path = folder / name
        if path.exists():
            path.rename(target / name)
    return target
