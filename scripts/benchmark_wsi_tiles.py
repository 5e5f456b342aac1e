"""Tile quantification speed against the raw OpenSlide read rate, as a Markdown table.

Usage: .venv/bin/python scripts/benchmark_wsi_tiles.py [--size-px 2048] [--repeats 2]

Writes one demo slide (RDLS2, 0.5 um/px) to a temporary folder, reads every 256 px level-0
tile with OpenSlide's read_region, and times, on one thread, the read alone and
rdls.wsi.tiles.quantify_tile on the same tiles. Prints tiles per second per core for both and
their ratio: how many reader cores one quantifying core keeps busy, or the other way round.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: the workflow runs slides as parallel jobs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

import numpy as np  # noqa: E402
import openslide  # noqa: E402

from rdls.demo._slides import write_slide  # noqa: E402
from rdls.wsi.tiles import TileSettings, quantify_tile  # noqa: E402

TILE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-px", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.tiff"
        write_slide(out_path=path, subtype="RDLS2", mpp=0.5, size_px=(args.size_px,) * 2,
                    rng=np.random.default_rng(0))  # fmt: skip
        slide = openslide.OpenSlide(str(path))
        corners = [
            (x, y) for y in range(0, args.size_px, TILE) for x in range(0, args.size_px, TILE)
        ]
        read_s, tiles = [], []
        for _ in range(args.repeats):
            slide = openslide.OpenSlide(str(path))  # fresh handle: no warm tile cache
            start = time.perf_counter()
            tiles = [np.asarray(slide.read_region(c, 0, (TILE, TILE)))[..., :3] for c in corners]
            read_s.append(time.perf_counter() - start)
            slide.close()
        settings = {"none": TileSettings(), "macenko": TileSettings(stain_normalisation="macenko")}
        rates = {"OpenSlide read_region, level 0 (RGBA -> RGB)": len(tiles) / min(read_s)}
        for name, chosen in settings.items():
            quantify_tile(tiles[0], mpp=0.5, settings=chosen)  # warm-up
            best = np.inf
            for _ in range(args.repeats):
                start = time.perf_counter()
                for tile in tiles:
                    quantify_tile(tile, mpp=0.5, settings=chosen)
                best = min(best, time.perf_counter() - start)
            rates[f"quantify_tile, stain_normalisation={name!r}"] = len(tiles) / best
    read_rate = rates["OpenSlide read_region, level 0 (RGBA -> RGB)"]
    print(f"{len(tiles)} tiles of {TILE} px from a {args.size_px} px demo slide, one thread, "
          f"best of {args.repeats}\n")  # fmt: skip
    print("| step | tiles/s per core | read rate / step rate |")
    print("|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {read_rate / rate:.1f} |")


if __name__ == "__main__":
    main()
