"""Connecting to Ray: a fresh local instance or an existing cluster, with clear errors."""

from __future__ import annotations

import os
import socket
from typing import Any

from nasframe.errors import NasframeError, PluginError


def import_ray() -> Any:
    """Import Ray, or say how to install it."""
    try:
        import ray
    except ImportError:
        raise PluginError(
            "parallel evaluation (workers > 1) needs ray, which is not installed; "
            "run: pip install 'nasframe[ray]'"
        ) from None
    return ray


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Connect to Ray unless this process already is; return whether a cluster was started.

    Args:
        address: an existing cluster (``"auto"``, ``"10.0.0.1:6379"``, ``"ray://..."``);
            ``None`` or ``""``: the ``RAY_ADDRESS`` environment variable if set, else a
            new local Ray instance in this process -- never a cluster Ray finds on its
            own (a ``ray start`` on this machine, or the stale address file of one that
            has ended); pass ``"auto"`` for that.
        num_cpus: CPUs of a locally started instance (default: all).

    Raises:
        PluginError: Ray is not installed.
        NasframeError: the cluster at ``address`` cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    target = resolve_address(address)
    local = target == "local"
    where = "locally" if local else f"at {target!r}"
    # Ray's own default would join a cluster it finds in its address file, which outlives
    # the cluster if it crashed; "local" always starts a fresh instance.
    options: dict[str, Any] = {"address": target, "include_dashboard": False, "log_to_driver": True}
    if local and num_cpus is not None:
        options["num_cpus"] = num_cpus
    # Ray retries an address where nothing listens for many minutes; a host:port that
    # refuses a plain TCP connection is reported at once instead.
    refused = None if local else _unreachable(target)
    if refused:
        raise NasframeError(
            f"could not start or reach the Ray cluster {where}: nothing answers there "
            f"({refused}) (is the cluster up? 'ray start --head' starts one; "
            "'ray status' checks it)"
        )
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:300]
        if local:
            hint = "start one with 'ray start --head' and pass its address"
        else:
            hint = (
                "a cluster that uses token authentication also needs its token here: "
                "RAY_AUTH_TOKEN or the file ~/.ray/auth_token"
            )
        raise NasframeError(
            f"could not start or reach the Ray cluster {where}: {reason} ({hint})"
        ) from None
    return local


def resolve_address(address: str | None) -> str:
    """The cluster address a driver given ``address`` connects to (see connect_ray)."""
    return address or os.environ.get("RAY_ADDRESS") or "local"


def _unreachable(address: str, timeout: float = 10.0) -> str | None:
    """Why a TCP connection to the ``host:port`` of ``address`` fails, or ``None``.

    ``None`` too for addresses without a port (``"auto"``), which Ray resolves itself.
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def check_workers_fit(workers: int, num_cpus: float, num_gpus: float) -> None:
    """Refuse at once ``workers`` that a local Ray instance can never place.

    Called right after :func:`connect_ray` started a local instance: its resources are the
    machine's and never grow, so workers that do not fit would wait for placement until
    the start timeout and end in a traceback. (A cluster may autoscale, so its workers
    are not checked here.)

    Raises:
        NasframeError: ``workers * num_cpus`` or ``workers * num_gpus`` exceeds what the
            instance has, naming both and what would fit.
    """
    ray = import_ray()
    total = ray.cluster_resources()
    for name, each, key in (("num_cpus", num_cpus, "CPU"), ("num_gpus", num_gpus, "GPU")):
        have = float(total.get(key, 0.0))
        need = workers * float(each)
        if each and need > have + 1e-9:
            fit = int(have // each) if each else 0
            share = f"{name}={have / workers:g} to share them" if have else ""
            hints = [f"workers={fit}"] if fit >= 1 else []
            hints += [share] if share else []
            raise NasframeError(
                f"{workers} Ray workers with {name}={each:g} each need {need:g} {key}s, but "
                f"the local Ray instance has {have:g}; use "
                + (" or ".join(hints) or f"{name}=0")
                + f" ([run] workers, [ray] {name})"
            )
