"""A user-supplied tile classifier (a torch checkpoint) that overrules the pixel compartments.

Labs that have trained a tissue-type network on their own slides (for example on Kather's
nine colorectal classes) can let it overrule the pixel-level compartments of the tiles it calls
stroma, other tissue or background (:func:`rdls.wsi.compartments.override_by_tile`); a tile
it calls tumour keeps its pixel map of epithelium and stroma. The checkpoint must carry
its architecture, because the workflow cannot know which network to build around a plain state
dict: either a ``torch.export`` program (``.pt2``, from ``torch.export.save``, with a dynamic
batch dimension), or a TorchScript file (any other suffix, from ``torch.jit.save``; deprecated
by torch but still what most published models ship as). The model
takes a float batch ``(n, 3, input_px, input_px)`` of RGB in [0, 1] normalised with ``mean``
and ``std``, and returns one logit per class; the config lists the classes in output order
with the compartment each stands for:

.. code-block:: yaml

    wsi:
      quantify:
        classifier:
          checkpoint: models/kather9.pt
          classes:
            - {name: TUM, compartment: tumour}
            - {name: STR, compartment: stroma}
            - {name: LYM, compartment: other}
            - {name: BACK, compartment: background}

Nuclei are still classified one by one by :mod:`rdls.wsi.nuclei`; only the compartment
they are counted in can change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from rdls.errors import InputError

COMPARTMENTS = ("tumour", "stroma", "other", "background")


@dataclass(frozen=True)
class ClassifierSettings:
    """Where the checkpoint is and how to feed it; see the module docstring."""

    checkpoint: str
    classes: tuple[tuple[str, str], ...]
    input_px: int = 224
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    batch_size: int = 64

    @classmethod
    def from_config(cls, config: Mapping | None) -> ClassifierSettings | None:
        """Settings from the ``wsi.quantify.classifier`` block; None when no checkpoint is set."""
        if not config or not config.get("checkpoint"):
            return None
        classes = tuple((str(c["name"]), str(c["compartment"])) for c in config.get("classes", []))
        if not classes:
            raise InputError(
                "wsi.quantify.classifier.classes is empty: list the checkpoint's output classes "
                "in order, each as {name: ..., compartment: tumour|stroma|other|background}"
            )
        unknown = sorted({c for _, c in classes} - set(COMPARTMENTS))
        if unknown:
            raise InputError(
                f"wsi.quantify.classifier.classes: unknown compartment(s) {', '.join(unknown)}; "
                f"use {', '.join(COMPARTMENTS)}"
            )
        options = {k: config[k] for k in ("input_px", "batch_size") if k in config}
        options.update({k: tuple(config[k]) for k in ("mean", "std") if k in config})
        return cls(checkpoint=str(config["checkpoint"]), classes=classes, **options)


@cache
def _load(checkpoint: str, device: str):
    import torch

    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(
            f"wsi.quantify.classifier.checkpoint: file '{checkpoint}' does not exist; fix the "
            "path or set checkpoint to null to class tiles by their eosin"
        )
    exported = path.suffix == ".pt2"
    try:
        if exported:
            return torch.export.load(str(path)).module().to(device)
        model = torch.jit.load(str(path), map_location=device)
    except Exception as error:  # torch raises RuntimeError or pickle/zip errors alike
        kind = "torch.export program" if exported else "TorchScript model"
        raise InputError(
            f"wsi.quantify.classifier.checkpoint: '{checkpoint}' is not a {kind} "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); save the trained "
            "network with torch.export.save(torch.export.export(model, ...), 'model.pt2') or "
            "torch.jit.save(torch.jit.script(model), 'model.pt')"
        ) from error
    model.eval()
    return model


def classify_tiles(images: Sequence[np.ndarray], settings: ClassifierSettings) -> dict:
    """Class, compartment and probability of each tile from the checkpoint.

    Parameters
    ----------
    images
        RGB uint8 tiles ``(height, width, 3)``, all the same size.
    settings
        From :meth:`ClassifierSettings.from_config`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``classifier_class`` (the class name), ``classifier_probability`` (its softmax
        probability) and ``compartment`` (the class's compartment), one entry per tile.
    """
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = _load(settings.checkpoint, device)
    names = np.array([n for n, _ in settings.classes])
    compartment_of = np.array([c for _, c in settings.classes])
    if len(images) == 0:
        empty = np.array([], dtype=object)
        return {"classifier_class": empty, "classifier_probability": np.array([]),
                "compartment": empty}  # fmt: skip
    mean = torch.tensor(settings.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(settings.std, dtype=torch.float32).view(1, 3, 1, 1)
    indices, probabilities = [], []
    with torch.inference_mode():
        for start in range(0, len(images), settings.batch_size):
            batch = np.stack(images[start : start + settings.batch_size])
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)
            if x.shape[-1] != settings.input_px or x.shape[-2] != settings.input_px:
                x = torch.nn.functional.interpolate(
                    x, size=(settings.input_px, settings.input_px), mode="bilinear",
                    antialias=True, align_corners=False,
                )  # fmt: skip
            logits = model(((x - mean) / std).to(device))
            if logits.ndim != 2 or logits.shape[1] != len(names):
                raise InputError(
                    f"wsi.quantify.classifier: '{settings.checkpoint}' returns output of shape "
                    f"{tuple(logits.shape)}, but classes lists {len(names)} classes; list one "
                    "class per output, in the model's order"
                )
            probability = torch.softmax(logits.float(), dim=1).cpu().numpy()
            indices.append(probability.argmax(axis=1))
            probabilities.append(probability.max(axis=1))
    index = np.concatenate(indices)
    return {
        "classifier_class": names[index],
        "classifier_probability": np.concatenate(probabilities),
        "compartment": compartment_of[index],
    }
