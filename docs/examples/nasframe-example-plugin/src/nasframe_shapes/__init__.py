"""An example nasframe plugin: the ``shapes-v1`` dataset of procedurally drawn shapes.

It shows everything a dataset plugin needs and nothing more: a factory built on
:class:`nasframe.ArrayDataset`, a registration hook, and a configuration section whose
keys nasframe validates. It imports only nasframe's public API.
"""

from __future__ import annotations

import numpy as np

import nasframe

__all__ = ["CLASSES", "draw", "make_shapes"]

__version__ = "0.1.0"

#: The class names, in label order.
CLASSES = ("circle", "square", "triangle", "cross")


def draw(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw one filled shape of class ``label`` at a random place and scale.

    Args:
        label: the class, an index into :data:`CLASSES`.
        size: the image side in pixels.
        rng: where the position and scale come from.

    Returns:
        A ``(size, size)`` ``float32`` image, 1 inside the shape and 0 outside.
    """
    radius = rng.uniform(0.2, 0.4) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    dy, dx = y - cy, x - cx
    if CLASSES[label] == "circle":
        inside = dy**2 + dx**2 <= radius**2
    elif CLASSES[label] == "square":
        half = radius * 0.85  # about the circle's area, so size alone does not tell them apart
        inside = (np.abs(dy) <= half) & (np.abs(dx) <= half)
    elif CLASSES[label] == "triangle":
        # apex up: inside when below the two slanted edges and above the base
        inside = (dy <= radius * 0.7) & (np.abs(dx) <= (dy + radius) * 0.6)
    else:
        bar = radius * 0.3
        inside = ((np.abs(dy) <= bar) & (np.abs(dx) <= radius)) | (
            (np.abs(dx) <= bar) & (np.abs(dy) <= radius)
        )
    return inside.astype(np.float32)


def make_shapes(
    *,
    size: int = 16,
    per_class: int = 200,
    noise: float = 0.1,
    seed: int = 0,
    validation: float = 0.2,
    test: float = 0.2,
) -> nasframe.ArrayDataset:
    """Build the shapes dataset: ``per_class`` images of each class, split by ``seed``.

    Args:
        size: image side in pixels.
        per_class: examples of each class.
        noise: standard deviation of the Gaussian pixel noise (pixels are clipped to 0..1).
        seed: seeds the drawing, the noise and the split; equal seeds give equal data.
        validation: fraction of examples in the validation split.
        test: fraction of examples in the test split.

    Returns:
        An :class:`nasframe.ArrayDataset` named ``shapes`` with ``(size, size, 1)`` images.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    images = np.stack([draw(int(label), size, rng) for label in labels])
    if noise > 0:
        images = np.clip(images + rng.normal(0.0, noise, images.shape), 0.0, 1.0)
    indices = nasframe.split_indices(len(labels), validation=validation, test=test, seed=seed)
    # Every setting that changes the arrays is part of the identity, so the experiment
    # database never mixes results measured on different data.
    identity = (
        f"shapes[size={size},per_class={per_class},noise={noise},seed={seed},"
        f"val={validation},test={test}]"
    )
    return nasframe.ArrayDataset(
        "shapes",
        {split: (images[idx], labels[idx]) for split, idx in indices.items()},
        num_classes=len(CLASSES),
        identity=identity,
    )


@nasframe.hookimpl
def nasframe_register_datasets(registry: nasframe.Registry[nasframe.DatasetHandler]) -> None:
    """Register ``shapes-v1``; its settings come from the ``[shapes]`` section."""
    registry.add(
        "shapes-v1",
        make_shapes,
        summary="procedurally drawn circles, squares, triangles and crosses",
        section="shapes",
    )


@nasframe.hookimpl
def nasframe_add_config(schema: nasframe.ConfigSchema) -> None:
    """Declare the ``[shapes]`` section, so nasframe validates it and documents it."""
    section = schema.section("shapes", "The example shapes dataset (nasframe-example-shapes).")
    section.add("size", int, 16, "image side in pixels", min=8, max=128)
    section.add("per_class", int, 200, "examples of each of the 4 classes", min=5, max=100_000)
    section.add("noise", float, 0.1, "standard deviation of the pixel noise", min=0, max=1)
    section.add("seed", int, 0, "seed of the drawing, the noise and the split", min=0)
    section.add("validation", float, 0.2, "fraction in the validation split", min=0, max=0.5)
    section.add("test", float, 0.2, "fraction in the test split", min=0, max=0.5)
