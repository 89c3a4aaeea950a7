"""Copies of the two datasets small enough to travel to a lent GPU machine (64 MiB with the code and wheels):
every JPEG whose shorter side exceeds MAX[name] is resized to it (Lanczos, JPEG quality QUALITY[name]); everything
else (smaller images, the GIF placeholder, README, LICENSE) is copied as it is.
Usage: python results/gpu/shrink.py SRC DST   (SRC holds hymenoptera_data/ and clothing-dataset-small/)"""
import shutil
import sys
from pathlib import Path

from PIL import Image

# at least 1.15 x the largest training size of each dataset's reference runs: the loaders first resize a
# training image's shorter side to 1.15 x size, so a larger original changes nothing but JPEG noise
MAX = {"hymenoptera_data": 300, "clothing-dataset-small": 184}
QUALITY = {"hymenoptera_data": 85, "clothing-dataset-small": 80}

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for name, side in MAX.items():
    for p in sorted((src / name).rglob("*")):
        if not p.is_file(): continue
        q = dst / p.relative_to(src)
        q.parent.mkdir(parents=True, exist_ok=True)
        try:
            im = Image.open(p)
            keep = im.format != "JPEG" or min(im.size) <= side
        except Exception:
            keep = True
        if keep:
            shutil.copy2(p, q)
            continue
        s = side / min(im.size)
        im = im.convert("RGB").resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
        im.save(q, quality=QUALITY[name])
