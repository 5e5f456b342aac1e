"""Make H&E region images (PNG, JPEG, TIFF) into small pyramidal slides the slide branch reads.

Usage: .venv/bin/python scripts/images_to_slides.py IMAGES_DIR OUT_DIR --mpp 0.5

Writes ``OUT_DIR/<stem>.tiff`` for every image (a pyramidal tiled TIFF carrying ``--mpp`` as
its resolution) and ``OUT_DIR/slides.tsv`` (slide_id, subject_id, path, mpp) to point the
workflow's ``sheets.slides`` at. Regions of interest, tissue-microarray cores or annotated
patches then go through the same tissue detection, tiling, nucleus classification and
compartments as whole slides, and each slide's nucleus table (``results/wsi/nuclei/``) carries
level-0 coordinates, which are the image's own pixel coordinates.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow" / "scripts"))

from rdls.wsi.pyramid import write_pyramid

SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def convert(images: Path, out: Path, *, mpp: float, subject_prefix: str = "") -> pd.DataFrame:
    """Write one slide per image and return the slides sheet."""
    paths = sorted(p for p in images.iterdir() if p.suffix.lower() in SUFFIXES)
    if not paths:
        raise SystemExit(f"{images}: no image ({', '.join(SUFFIXES)}) found")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        slide_id = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)
        target = out / f"{slide_id}.tiff"
        write_pyramid(target, rgb, mpp=mpp)
        rows.append({"slide_id": slide_id, "subject_id": f"{subject_prefix}{slide_id}",
                     "path": str(target.resolve()), "mpp": mpp})  # fmt: skip
    sheet = pd.DataFrame(rows)
    sheet.to_csv(out / "slides.tsv", sep="\t", index=False)
    return sheet


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mpp", type=float, required=True, help="microns per pixel")
    parser.add_argument("--subject-prefix", default="", help="prefix of the subject ids")
    args = parser.parse_args(argv)
    sheet = convert(args.images, args.out, mpp=args.mpp, subject_prefix=args.subject_prefix)
    print(f"{len(sheet)} slides written to {args.out} with {args.out / 'slides.tsv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
