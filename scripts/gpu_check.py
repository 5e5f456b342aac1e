"""CPU against CUDA for the imaging encoder: agreement of embeddings and training speed.

Usage: python scripts/gpu_check.py [--out gpu_check.json]

Needs only torch and numpy (runs in a bare CUDA torch environment, without the rest of
.venv). With a randomly initialised, seeded region-pooled ResNet-10 encoder of the default
settings, on random two-channel crops of the default crop size (64 x 64 x 16) with a
tumour-shaped mask:

1. embeds 64 crops on the CPU and on CUDA (rdls.imaging.encoder.embed) and reports the
   largest |CUDA - CPU| relative to the largest |CPU| value, and whether two CUDA runs agree
   exactly;
2. times training steps (forward and backward of encoder and projection head on two batches
   of 32 views, NT-Xent, AdamW) on each device, and projects the seconds per epoch of the
   study's 931-subject training cohort (29 full batches). Views are drawn on the CPU either
   way and are not in these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

import numpy as np
import torch

from rdls.imaging._network import nt_xent
from rdls.imaging.encoder import (
    EncoderSettings,
    _projection_head,
    build_encoder,
    embed,
)

STUDY_TRAINING_SUBJECTS = 931


def _crops(n: int, seed: int) -> np.ndarray:
    """Random images with an ellipsoidal tumour mask of random size, (n, 2, 64, 64, 16)."""
    rng = np.random.default_rng(seed)
    crops = np.zeros((n, 2, 64, 64, 16), dtype=np.float32)
    crops[:, 0] = rng.normal(size=(n, 64, 64, 16))
    x, y, z = np.meshgrid(np.arange(64), np.arange(64), np.arange(16), indexing="ij")
    for i, radius in enumerate(rng.uniform(8, 20, size=n)):
        crops[i, 1] = ((x - 32) ** 2 + (y - 32) ** 2) / radius**2 + ((z - 8) / 4) ** 2 <= 1
    return crops


def embeddings(settings: EncoderSettings, crops: np.ndarray, device: str) -> np.ndarray:
    torch.manual_seed(0)
    encoder = build_encoder(settings).eval()
    return embed(encoder, crops, settings=replace(settings, device=device))


def training_step_seconds(settings: EncoderSettings, device: str, *, steps: int) -> float:
    torch.manual_seed(0)
    encoder = build_encoder(settings).to(device)
    head = _projection_head(settings.embedding_length).to(device)
    optimiser = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3)
    views = [torch.from_numpy(_crops(settings.batch_size, seed)).to(device) for seed in (1, 2)]

    def step():
        loss = nt_xent(head(encoder(views[0])), head(encoder(views[1])), temperature=0.2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    for _ in range(3):  # warm-up: cuDNN picks its algorithms
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu_check.json")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA device")
    settings = EncoderSettings()
    crops = _crops(64, 0)
    on_cpu = embeddings(settings, crops, "cpu")
    on_cuda = embeddings(settings, crops, "cuda")
    again = embeddings(settings, crops, "cuda")
    scale = float(np.abs(on_cpu).max())
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "embedding_max_abs_difference_relative": float(np.abs(on_cuda - on_cpu).max()) / scale,
        "cuda_rerun_identical": bool(np.array_equal(on_cuda, again)),
        "cuda_rerun_max_abs_difference": float(np.abs(on_cuda - again).max()),
    }
    for device, steps in (("cpu", 10), ("cuda", 100)):
        seconds = training_step_seconds(settings, device, steps=steps)
        batches = STUDY_TRAINING_SUBJECTS // settings.batch_size
        result[f"{device}_seconds_per_training_step"] = seconds
        result[f"{device}_projected_seconds_per_epoch_931_subjects"] = seconds * batches
    result["training_step_speedup_cuda_over_cpu"] = (
        result["cpu_seconds_per_training_step"] / result["cuda_seconds_per_training_step"]
    )
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
