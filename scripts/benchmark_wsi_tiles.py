"""Tile quantification speed against the raw OpenSlide read rate, as a Markdown table.

Usage: .venv/bin/python scripts/benchmark_wsi_tiles.py [--size-px 2048] [--repeats 2]
           [--slides 4096x3072 8192x6144] [--threads 2]

Writes one demo slide (RDLS2, 0.5 um/px) to a temporary folder, reads every 256 px level-0
tile with OpenSlide's read_region, and times, on one thread, the read alone and
rdls.wsi.tiles.quantify_tile on the same tiles. Prints tiles per second per core for both and
their ratio: how many reader cores one quantifying core keeps busy, or the other way round.

Then, for each ``--slides`` size, writes a demo slide of that size and times the two slide
rules' work end to end (rdls.wsi.steps.tissue_step, then quantify_step with ``--threads``
processes), as the rules run it: time per slide at the demo and paper sizes.
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
import pandas as pd  # noqa: E402

from rdls.config import validate_config  # noqa: E402
from rdls.demo._slides import write_slide  # noqa: E402
from rdls.wsi.steps import quantify_step, tissue_step  # noqa: E402
from rdls.wsi.tiles import TileSettings, quantify_tile  # noqa: E402

TILE = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-px", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--slides", nargs="*", default=["4096x3072", "8192x6144"])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tile_rates(args)
    if args.slides:
        slide_times([tuple(int(v) for v in size.split("x")) for size in args.slides],
                    threads=args.threads)  # fmt: skip


def tile_rates(args) -> None:
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


def slide_times(sizes: list[tuple[int, int]], *, threads: int) -> None:
    """Seconds of tissue_step and quantify_step for one demo slide of each size."""
    settings = validate_config({})["wsi"]
    print(f"\n| slide (px at 0.5 um/px) | tissue tiles | wsi_tissue s | wsi_quantify s "
          f"({threads} processes) | tiles/s |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for width, height in sizes:
            path = out / f"slide_{width}x{height}.tiff"
            write_slide(out_path=path, subtype="RDLS3", mpp=0.5, size_px=(width, height),
                        rng=np.random.default_rng(1))  # fmt: skip
            stem = out / f"{width}x{height}"
            start = time.perf_counter()
            tissue_step(slide_id="bench", path=path, mpp=None, settings=settings,
                        allow_exclusions=False, out_tiles=f"{stem}.tiles.parquet",
                        out_status=f"{stem}.tiles.tsv", out_thumbnail=f"{stem}.png")  # fmt: skip
            tissue_s = time.perf_counter() - start
            start = time.perf_counter()
            quantify_step(slide_id="bench", path=path, mpp=None, tiles=f"{stem}.tiles.parquet",
                          status=f"{stem}.tiles.tsv", settings=settings, threads=threads,
                          out_tiles=f"{stem}.parquet", out_metrics=f"{stem}.tsv",
                          out_nuclei=f"{stem}.nuclei.parquet",
                          out_heatmap=f"{stem}.heatmap.png")  # fmt: skip
            quantify_s = time.perf_counter() - start
            n_tiles = len(pd.read_parquet(f"{stem}.parquet"))
            print(f"| {width} x {height} | {n_tiles} | {tissue_s:.1f} | {quantify_s:.1f} | "
                  f"{n_tiles / quantify_s:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
