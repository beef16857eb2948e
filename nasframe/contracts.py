"""The component contracts: what every plugin-provided part of a search must do.

nasframe wires five kinds of component into one environment (see ``docs/``):

* :class:`SearchSpace` -- the layer catalogue, the action space and what an action does;
* :class:`StateEncoder` -- the observation space and the observation of a state;
* :class:`PerformanceEstimator` -- trains or scores an architecture into an
  :class:`Evaluation`;
* :class:`DatasetHandler` -- the data an estimator trains and validates on;
* :class:`ExperimentDB` -- stores one :class:`Record` per evaluated architecture and is
  the evaluation cache;
* :class:`NetworkBuilder` -- turns an NSC into an untrained network for an estimator.

This module holds value types and abstract classes only; it imports no framework
(TensorFlow's input pipeline is :mod:`nasframe.authoring.tf_data`).

A plugin provides a component by registering a factory for it (see
:mod:`nasframe.hookspecs`); the core builds it from the configuration. Value types here
(:class:`Evaluation`, :class:`Record`, :class:`CacheKey`, :class:`SearchState`,
:class:`Transition`, :class:`ActionInfo`) are plain frozen dataclasses so they cross
process boundaries (Ray, multiprocessing) by pickling.
"""

from __future__ import annotations

import abc
import enum
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nasframe.nsc import NSC, network_text

if TYPE_CHECKING:
    import gymnasium
    import pandas as pd

__all__ = [
    "ActionInfo",
    "CacheKey",
    "DatasetHandler",
    "Evaluation",
    "ExperimentDB",
    "Measurement",
    "NetworkBuilder",
    "PerformanceEstimator",
    "Record",
    "SearchSpace",
    "SearchState",
    "Split",
    "StateEncoder",
    "Status",
    "Transition",
    "fingerprint_of",
]

#: The name of a dataset split. The reward never sees ``"test"``.
Split = Literal["train", "validation", "test"]


class Status(enum.StrEnum):
    """How an evaluation ended."""

    OK = "ok"
    INVALID = "invalid"  # the architecture cannot be built for this input
    DIVERGED = "diverged"  # the loss became NaN or infinite
    OUT_OF_MEMORY = "out_of_memory"
    TIMEOUT = "timeout"  # the wall-clock budget ran out (best accuracy so far kept)
    ERROR = "error"  # anything else; the message holds the exception

    @property
    def transient(self) -> bool:
        """Whether a retry might succeed (``out_of_memory``, ``timeout``, ``error``)."""
        return self in (Status.OUT_OF_MEMORY, Status.TIMEOUT, Status.ERROR)


@dataclass(frozen=True)
class Evaluation:
    """What a :class:`PerformanceEstimator` measured for one architecture.

    Attributes:
        status: how the evaluation ended; only ``ok`` (and ``timeout``, with the best
            accuracy so far) carry a meaningful accuracy.
        accuracy: accuracy on the validation split, in [0, 1].
        params: trainable and non-trainable parameters of the built model.
        flops: floating-point operations of one forward pass of one example.
        density: BlockQNN's density of the block (edges / nodes of the NSC graph).
        seconds: wall seconds the evaluation took.
        epochs: epochs actually trained.
        message: why the status is not ``ok`` (one line), else empty.
        train_accuracy: accuracy on a fixed subset of the training split, measured the
            way ``accuracy`` is (inference mode), with the final weights; ``None`` when
            the estimator does not measure it (a proxy, a table without the column, a
            record of an older schema). Far below ``accuracy``'s usual level -- a network
            that cannot even fit its training data in inference mode -- it shows a broken
            measurement (``docs/estimator.md#batch-normalisation``).
        measure: what ``accuracy`` holds when it is not a validation accuracy: a short
            label of the fidelity that produced it, such as ``"synflow score"`` (a
            zero-cost proxy's squashed score) or ``"cascade 1/2: synflow score"`` (a
            cascade's answer below its last fidelity). ``""`` (the default): a
            validation accuracy. Results, summaries and plots name it and never count
            such a value as an accuracy.
    """

    status: Status = Status.OK
    accuracy: float = 0.0
    params: int = 0
    flops: int = 0
    density: float = 0.0
    seconds: float = 0.0
    epochs: int = 0
    message: str = ""
    train_accuracy: float | None = None
    measure: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))

    @property
    def ok(self) -> bool:
        """Whether the evaluation succeeded."""
        return self.status is Status.OK

    @property
    def label(self) -> str:
        """What ``accuracy`` is, for display: :attr:`measure`, else ``"accuracy"``."""
        return self.measure or "accuracy"

    @classmethod
    def failed(cls, status: Status | str, message: str, **values: Any) -> Evaluation:
        """An evaluation that ended with ``status`` and the one-line ``message``."""
        return cls(status=Status(status), message=" ".join(str(message).split()), **values)


@dataclass(frozen=True)
class Measurement:
    """A training measured in full: for a benchmark table or a final report.

    What :meth:`PerformanceEstimator.measure` returns. A search never asks for one: it is
    the only place an estimator reads the test split.

    Attributes:
        evaluation: what :meth:`PerformanceEstimator.evaluate` would have reported.
        curve: the validation accuracy after each completed epoch (epoch 1 first), so
            every epoch count is a fidelity; empty for an estimator without epochs or a
            failed evaluation.
        test_accuracy: the accuracy on the test split after the last epoch; ``None``
            when it was not asked for, the split is empty, or the training failed.
        train_seconds: wall seconds of the training passes alone (no build, no trace,
            no validation).
    """

    evaluation: Evaluation
    curve: tuple[float, ...] = ()
    test_accuracy: float | None = None
    train_seconds: float = 0.0


@dataclass(frozen=True)
class CacheKey:
    """What identifies one evaluation: the data, the graph and the estimator.

    Attributes:
        dataset: :attr:`DatasetHandler.identity` (name, task and data-changing settings).
        arch_hash: :attr:`nasframe.nsc.NSC.canonical_hash` of the architecture.
        fingerprint: :meth:`PerformanceEstimator.fingerprint`.
    """

    dataset: str
    arch_hash: str
    fingerprint: str


#: The version of the :class:`Record` schema, written into every database file.
#:
#: * 1: the first schema.
#: * 2: added :attr:`Evaluation.train_accuracy` (the last column; empty/NULL: not
#:   measured). The file backends upgrade a version-1 database in place when they open
#:   it, every record kept, its ``train_accuracy`` ``None``.
#: * 3: added :attr:`Evaluation.measure` (the last column; empty: a validation
#:   accuracy). An older database is upgraded the same way, its records' ``measure``
#:   empty (before version 3 a zero-cost score was stored as if it were an accuracy;
#:   its ``estimator`` column says which records those are).
RECORD_SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Record:
    """One row of the experiment database: an evaluation and everything that keys it.

    The schema (field names and types) is versioned by ``RECORD_SCHEMA_VERSION``; a
    database written by a newer schema is refused with a clear error.

    ``nsc`` is the network, terminal row dropped (``""``: the head-only network); a
    record built from an older row that kept the terminal row (``1,7,0,0,0``) gets it
    dropped here (:func:`nasframe.nsc.network_text`), whichever backend read it.
    """

    dataset: str
    task: str
    arch_hash: str
    nsc: str
    estimator: str
    estimator_version: str
    fingerprint: str
    evaluation: Evaluation
    seed: int | None = None
    timestamp: str = ""
    nasframe_version: str = ""

    def __post_init__(self) -> None:
        network = network_text(self.nsc)
        if network != self.nsc:
            object.__setattr__(self, "nsc", network)

    @property
    def key(self) -> CacheKey:
        """The cache key of this record."""
        return CacheKey(self.dataset, self.arch_hash, self.fingerprint)

    def to_flat(self) -> dict[str, Any]:
        """The record as one flat mapping (evaluation fields inlined), for tables."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "evaluation"}
        flat.update(asdict(self.evaluation))
        flat["status"] = str(self.evaluation.status)
        return flat

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_flat`; values may be strings (as read from a CSV file)."""
        evaluation: dict[str, Any] = {}
        for name in (f.name for f in fields(Evaluation)):
            value = flat.get(name)
            if name == "status":
                evaluation[name] = Status(str(value))
            elif name in ("message", "measure"):
                evaluation[name] = "" if value is None else str(value)
            elif name in ("params", "flops", "epochs"):
                evaluation[name] = int(float(value)) if value not in (None, "") else 0
            elif name == "train_accuracy":  # not measured (or an older schema): None
                number = None if value in (None, "") else float(value)
                evaluation[name] = None if number is None or math.isnan(number) else number
            else:
                evaluation[name] = float(value) if value not in (None, "") else 0.0
        seed = flat.get("seed")
        return cls(
            dataset=str(flat["dataset"]),
            task=str(flat.get("task") or ""),
            arch_hash=str(flat["arch_hash"]),
            nsc=str(flat.get("nsc") or ""),
            estimator=str(flat.get("estimator") or ""),
            estimator_version=str(flat.get("estimator_version") or ""),
            fingerprint=str(flat["fingerprint"]),
            evaluation=Evaluation(**evaluation),
            seed=None if seed in (None, "") else int(float(seed)),
            timestamp=str(flat.get("timestamp") or ""),
            nasframe_version=str(flat.get("nasframe_version") or ""),
        )


def fingerprint_of(name: str, version: str, settings: Mapping[str, Any]) -> str:
    """A stable fingerprint: ``name-version-<12 hex digits of the sorted settings>``.

    Helper for :meth:`PerformanceEstimator.fingerprint`; ``settings`` must hold every
    setting that changes a result, as JSON-serialisable values.
    """
    blob = json.dumps(dict(settings), sort_keys=True, default=str)
    return f"{name}-{version}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class SearchState:
    """The state of an episode: the network so far plus the pointer offsets.

    Attributes:
        nsc: the architecture built so far.
        pointers: the two predecessor offsets of the ``pointer`` action mode (NASGym's
            ``pred1_shift``/``pred2_shift``); ``(0, 0)`` in the other modes.
    """

    nsc: NSC = field(default_factory=NSC)
    pointers: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class ActionInfo:
    """One action of a search space, for tables and logs.

    Attributes:
        id: the action's integer in the action space.
        label: a readable, unique label, e.g. ``convolution_k-3_pred1-L_pred2-0``.
        kind: ``"layer"``, ``"terminal"`` or ``"pointer"``.
    """

    id: int
    label: str
    kind: Literal["layer", "terminal", "pointer"]


@dataclass(frozen=True)
class Transition:
    """The result of :meth:`SearchSpace.apply`.

    Attributes:
        state: the new state (unchanged when nothing could be added).
        action: the decoded action.
        added: the NSC row the action added, if it added one.
        out_of_bounds: a pointer move left the valid range (ends the episode).
    """

    state: SearchState
    action: ActionInfo
    added: tuple[int, int, int, int, int] | None = None
    out_of_bounds: bool = False


class SearchSpace(abc.ABC):
    """Owns the action space and maps an action to a change of the state.

    Attributes:
        name: the registered component name.
        max_depth: the most layers a network may have (NASGym's ``max_nlayers``).
        layer_kernels: the allowed kernel sizes by layer type (``(0,)`` for types without
            a kernel); layer types missing from the mapping are not in the space.
    """

    name: str = ""
    max_depth: int
    layer_kernels: Mapping[Any, Sequence[int]]

    @property
    @abc.abstractmethod
    def action_space(self) -> gymnasium.spaces.Discrete:
        """The Gymnasium action space."""

    @abc.abstractmethod
    def actions(self) -> Sequence[ActionInfo]:
        """Every action, by id, with a readable label."""

    def reset(self) -> SearchState:
        """The state an episode starts from (the empty network)."""
        return SearchState()

    @abc.abstractmethod
    def apply(self, state: SearchState, action: int) -> Transition:
        """Apply ``action`` to ``state``.

        Raises:
            SearchSpaceError: ``action`` is not an integer in the action space.
        """

    @property
    def max_kernel(self) -> int:
        """The largest kernel size in the space (sizes the one-hot encoding)."""
        return max((k for ks in self.layer_kernels.values() for k in ks), default=0)

    @property
    def uses_pointers(self) -> bool:
        """Whether actions move predecessor pointers (the ``pointer`` mode)."""
        return False


class StateEncoder(abc.ABC):
    """Owns the observation space and turns a :class:`SearchState` into an observation.

    Observations are always members of :attr:`observation_space`, dtype included.
    """

    name: str = ""

    @property
    @abc.abstractmethod
    def observation_space(self) -> gymnasium.Space[Any]:
        """The Gymnasium observation space."""

    @abc.abstractmethod
    def encode(self, state: SearchState) -> np.ndarray:
        """The observation of ``state``."""


class DatasetHandler(abc.ABC):
    """The data a search measures its reward on.

    A handler has train, validation and test splits. Estimators train on ``train`` and
    measure the reward on ``validation``; ``test`` is for final reports only. A handler may
    hold several tasks (the datasets of meta-dataset) and switch between them.

    Attributes:
        name: the registered component name.
    """

    name: str = ""

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks this handler can switch between (one by default: its name)."""
        return (self.name,)

    @property
    def task(self) -> str:
        """The current task."""
        return self.tasks[0]

    def select_task(self, task: str) -> None:
        """Switch to ``task``.

        Raises:
            DatasetError: the task is unknown (the message lists the known ones).
        """
        from nasframe.errors import DatasetError, closest

        if task not in self.tasks:
            raise DatasetError(
                f"unknown task {task!r} of dataset {self.name!r}{closest(task, self.tasks)} "
                f"(known: {', '.join(self.tasks)})"
            )

    @property
    def identity(self) -> str:
        """Names the data of the current task for the cache key.

        It must change whenever the data the reward is measured on changes (task, split
        seed, resize, ...). The default is ``name`` or ``name/task``.
        """
        return self.name if self.task == self.name else f"{self.name}/{self.task}"

    @property
    @abc.abstractmethod
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one example, ``(height, width, channels)``."""

    @property
    @abc.abstractmethod
    def num_classes(self) -> int:
        """The number of classes of the current task."""

    @abc.abstractmethod
    def num_examples(self, split: Split) -> int:
        """The number of examples in ``split`` of the current task."""

    @abc.abstractmethod
    def arrays(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """``split`` as in-memory arrays: ``float32`` images ``(n, h, w, c)``, ``int64`` labels."""

    def tf_dataset(
        self,
        split: Split,
        *,
        batch_size: int,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> Any:
        """``split`` as a batched, prefetched ``tf.data`` pipeline of ``(images, labels)``.

        With ``shuffle`` the order changes every epoch (iteration), reproducibly from
        ``seed``: the same seed gives the same sequence of epoch orders. The default is
        :func:`nasframe.authoring.tf_data.pipeline` over :meth:`arrays` (TensorFlow is imported
        there, not here: the contracts are framework-neutral); a handler may override it.
        """
        from nasframe.authoring.tf_data import pipeline

        return pipeline(self, split, batch_size=batch_size, shuffle=shuffle, seed=seed)

    def __getstate__(self) -> dict[str, Any]:
        # Caches of one process (framework tensors) stay there; a copy rebuilds them.
        return {k: v for k, v in self.__dict__.items() if not k.startswith(PROCESS_LOCAL)}


#: Attributes of a :class:`DatasetHandler` whose names start with this are caches of one
#: process (framework tensors built from its arrays); they are not pickled.
PROCESS_LOCAL = "_nasframe_local_"


class PerformanceEstimator(abc.ABC):
    """Measures how good an architecture is on a dataset.

    ``evaluate`` never raises for a bad architecture or a failed training: the failure is
    an :class:`Evaluation` status with a message.

    Attributes:
        name: the registered component name.
        version: the behaviour version; a change of results needs a new version.
    """

    name: str = ""
    version: str = "1"

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """Name, version and every setting that changes the result (see :func:`fingerprint_of`).

        Two estimators whose results may differ never share a fingerprint, so they never
        share cache entries.
        """

    @abc.abstractmethod
    def evaluate(
        self, architecture: NSC, dataset: DatasetHandler, *, seed: int | None = None
    ) -> Evaluation:
        """Train or score ``architecture`` on ``dataset`` and report the result."""

    def measure(
        self,
        architecture: NSC,
        dataset: DatasetHandler,
        *,
        seed: int | None = None,
        test: bool = False,
        save_to: str | Path | None = None,
    ) -> Measurement:
        """Train ``architecture`` and record its learning curve (and test accuracy).

        Optional: ``nasframe bench build`` and ``nasframe finalize`` need it. Like
        :meth:`evaluate` it never raises for a bad architecture or a failed training. The
        test split is read only when ``test`` is true. With ``save_to`` an estimator that
        trains a model writes the trained model to that file (``nasframe finalize``; for
        ``keras-v1`` a ``.keras`` file); one that cannot save ignores it.

        Raises:
            NotImplementedError: the estimator cannot measure (the default).
        """
        raise NotImplementedError(
            f"estimator {self.name or type(self).__name__!r} cannot record learning curves "
            "(it does not implement measure())"
        )

    def check_setup(self, search_space: SearchSpace, dataset: DatasetHandler) -> None:  # noqa: B027
        """Refuse a search space or dataset this estimator cannot answer for.

        :class:`~nasframe.NASEnv` calls it once, when it is built, so a mismatch (a
        benchmark table built for another space or dataset) is an error at construction
        rather than a wrong answer later. The default accepts everything.

        Raises:
            ConfigError: the estimator cannot serve this space or dataset; the message
                names both sides.
        """

    def why_invalid(self, architecture: NSC, dataset: DatasetHandler) -> str | None:
        """Why the network this estimator would build for ``architecture`` cannot exist.

        ``None`` when it can be built, or when the estimator cannot tell (the default).
        Estimators that build networks answer with :func:`nasframe.why_invalid`, the one
        validity rule; the env's action masks ask this method, so it must be cheap (no
        model is built) and agree with :meth:`evaluate`'s ``invalid`` status.
        """
        return None

    @property
    def deterministic(self) -> bool:
        """Whether two evaluations with the same seed give the same result."""
        return True

    def close(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Free what the estimator holds (sessions, memory)."""


class NetworkBuilder(abc.ABC):
    """Turns an NSC into an untrained network of one framework, for an estimator to train.

    Registered through ``nasframe_register_builders`` and chosen by name in the
    estimator's configuration section (``[keras] builder``), so another network shape
    (a different head, a stacked block) needs a builder, not a new training loop.

    Attributes:
        name: the registered, versioned name (``nasgym-v1``); set by the composition
            when empty.
        framework: what :meth:`build` returns, in words (``"keras"``); an estimator
            refuses a builder of another framework with a clear error.
    """

    name: str = ""
    framework: str = ""

    @abc.abstractmethod
    def build(
        self,
        architecture: NSC,
        input_shape: tuple[int, int, int],
        num_classes: int,
        settings: Mapping[str, Any],
    ) -> Any:
        """The uncompiled network of ``architecture``, outputting ``num_classes`` logits.

        Args:
            architecture: the network to build (without its terminal row).
            input_shape: ``(height, width, channels)`` of one example.
            num_classes: the number of classes.
            settings: the estimator's settings (``filters``, ``dropout``, ... for
                ``keras-v1``), which a builder may read.

        Raises:
            ValueError: the architecture cannot be built for this input (an estimator
                reports it as status ``invalid``).
        """

    def fingerprint(self) -> str:
        """What identifies the networks this builder builds; part of the estimator's.

        The default is :attr:`name` (its version included). A builder with settings of its
        own returns :func:`fingerprint_of` of its name, version and those settings.
        """
        return self.name


class ExperimentDB(abc.ABC):
    """Stores one :class:`Record` per (dataset, architecture, estimator) and caches them.

    Implementations must be safe for several processes sharing one database, and never
    lose a stored record on a crash.
    """

    name: str = ""

    @abc.abstractmethod
    def get(self, key: CacheKey) -> Record | None:
        """The stored record for ``key``, or ``None``."""

    @abc.abstractmethod
    def put(self, record: Record) -> None:
        """Store ``record`` durably; a stored record of its key is kept.

        The one exception: a stored record with a transient status (``out_of_memory``,
        ``timeout``, ``error``) is superseded, so a retry (``retry_transient``) is cached.
        """

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Record]:
        """Every stored record, in the order stored."""

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, CacheKey) and self.get(key) is not None

    def to_frame(self) -> pd.DataFrame:
        """Every record as a typed pandas DataFrame, one flat row per record."""

        from nasframe.authoring.records_frame import records_to_frame

        frame: pd.DataFrame = records_to_frame(list(self))
        return frame

    def close(self) -> None:  # noqa: B027 -- optional hook, empty by design
        """Release files and connections."""
