#!/usr/bin/env python3
"""Training input throughput: images/s per core read, decoded and preprocessed to the 336² CLIP input (resize the
shortest edge to 336, centre crop 336, normalise; `CLIPImageProcessorPil`, as LLaVA-1.5 does), from the pipeline's
HDF5 `figures` shards (`ImageLoader` on (shard, record) refs) versus the same PNGs as loose files (`ImageLoader` on
paths). Prints numbers; asserts nothing.

Goals (issue): HDF5 ≥ 0.90 × the loose-file rate, and ≤ 100 files per 50k training samples.

The synthetic figures are plots, bar charts and noisy "micrograph" panels of 600–1400 px sides, PNG-encoded with the
`figures` stage's settings, so that sizes and decode costs are realistic. Reads go in a shuffled order (training
reads that way) in rounds that alternate the two layouts (other jobs' load hits both alike); the first images of
every round are a warm-up and not counted. Both layouts were just written, so both sit in the page cache: this
measures the CPU cost of the containers, not a cold parallel file system (where one open per loose file costs more).
Keep a few hundred images per shard (the default: 300): tiny shards fit HDF5's chunk cache and flatter the HDF5 side.

    python benchmarks/train_data_throughput.py [--images 1200] [--shards 4] [--measure 600] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ldrt_hpc.shards import ShardWriter, shard_path  # noqa: E402
from ldrt_hpc.stages.figures import SCHEMA  # noqa: E402
from ldrt_hpc.train.data import ImageLoader  # noqa: E402

SAMPLES = 50_000
"""The sample count the file-count goal is stated for."""
# the figures stage's PNG settings (ldrt_hpc/pdf/detector.py: _png_params), so that file sizes match the pipeline's
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
if hasattr(cv2, "IMWRITE_PNG_FILTER"):
    PNG_PARAMS += [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
COLOURS = [(115, 59, 31), (91, 73, 209), (73, 174, 237), (140, 121, 0), (130, 161, 102)]


# --------------------------------------------------------------------------------------------------------------
# synthetic figures


def _axes(image: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """Draw axes, ticks and labels; the plot area (x0, y0, x1, y1)."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = 90, 30, width - 30, height - 80
    cv2.line(image, (x0, y1), (x1, y1), (0, 0, 0), 2)
    cv2.line(image, (x0, y0), (x0, y1), (0, 0, 0), 2)
    for x in np.linspace(x0, x1, 6).astype(int):
        cv2.line(image, (x, y1), (x, y1 + 8), (0, 0, 0), 2)
        cv2.putText(image, f"{rng.uniform(0, 5):.1f}", (x - 18, y1 + 32), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(image, "Dose (Gy)", ((x0 + x1) // 2 - 50, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2,
                cv2.LINE_AA)
    return x0, y0, x1, y1


def _curves(image: np.ndarray, rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = _axes(image, rng)
    xs = np.linspace(x0, x1, 120)
    for colour in COLOURS[: rng.integers(2, 5)]:
        ys = y0 + (y1 - y0) * np.clip(np.cumsum(rng.uniform(0, 0.02, xs.size)), 0, 1)
        cv2.polylines(image, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, 3, cv2.LINE_AA)
        for x, y in zip(xs[::12], ys[::12]):
            cv2.circle(image, (int(x), int(y)), 6, colour, -1, cv2.LINE_AA)


def _bars(image: np.ndarray, rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = _axes(image, rng)
    count = int(rng.integers(3, 9))
    width = (x1 - x0) // (count * 2)
    for i in range(count):
        top = int(rng.uniform(y0 + 20, y1 - 20))
        left = x0 + width // 2 + i * 2 * width
        cv2.rectangle(image, (left, top), (left + width, y1), COLOURS[i % len(COLOURS)], -1)
        cv2.line(image, (left + width // 2, top - 25), (left + width // 2, top), (0, 0, 0), 2)


def _micrograph(image: np.ndarray, rng: np.random.Generator) -> None:
    """A fluorescence-like panel: dark, blurred noise with bright cells (compresses badly, like real ones)."""
    height, width = image.shape[:2]
    noise = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    for _ in range(int(rng.integers(20, 60))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(noise, centre, int(rng.integers(8, 30)), (40, int(rng.integers(120, 255)), 60), -1)
    image[:] = cv2.GaussianBlur(noise, (5, 5), 1.2)
    cv2.rectangle(image, (width - 160, height - 40), (width - 40, height - 30), (255, 255, 255), -1)  # scale bar


def make_figure(rng: np.random.Generator) -> np.ndarray:
    """One BGR figure, 600–1400 px a side: a plot or bar chart, a micrograph, or both side by side."""
    height, width = (int(v) for v in rng.integers(600, 1401, 2))
    image = np.full((height, width, 3), 255, np.uint8)
    kind = rng.choice(["curves", "bars", "micro", "mixed"], p=[0.35, 0.25, 0.15, 0.25])
    if kind == "curves":
        _curves(image, rng)
    elif kind == "bars":
        _bars(image, rng)
    elif kind == "micro":
        _micrograph(image, rng)
    else:
        half = width // 2
        _curves(image[:, :half], rng)
        _micrograph(image[:, half:], rng)
    return image


def write_corpus(out: Path, count: int, shards: int, seed: int) -> tuple[list[str], list[tuple[str, int]], int]:
    """The same PNGs as loose files and in `shards` figures shards; (paths, shard refs, total PNG bytes)."""
    rng = np.random.default_rng(seed)
    loose = out / "loose"
    loose.mkdir(parents=True, exist_ok=True)
    figures = out / "figures"
    bounds = np.linspace(0, count, shards + 1).astype(int)
    paths, refs, total = [], [], 0
    for shard in range(shards):
        with ShardWriter(figures, shard, stage="figures", count=shards, schema=SCHEMA, config_hash="bench") as writer:
            for record, number in enumerate(range(bounds[shard], bounds[shard + 1])):
                image = make_figure(rng)
                ok, encoded = cv2.imencode(".png", image, PNG_PARAMS)
                png = encoded.tobytes()
                path = loose / f"figure-{number:06d}.png"
                path.write_bytes(png)
                writer.append(_record(number, png, image.shape))
                paths.append(str(path))
                refs.append((str(shard_path(figures, shard)), record))
                total += len(png)
            writer.commit()
    return paths, refs, total


def _record(number: int, png: bytes, shape: tuple[int, ...]) -> dict:
    """A figures-stage record (every field of its SCHEMA) around one PNG."""
    return {"paper_id": f"paper-{number // 5:05d}", "name": f"Figure {number % 5 + 1}", "fig_type": "Figure",
            "page": number % 12, "caption": f"Figure {number % 5 + 1}. Synthetic benchmark figure {number}.",
            "caption_box": [72.0, 600.0, 540.0, 640.0], "region_box": [72.0, 100.0, 540.0, 590.0], "dpi": 150,
            "png": png, "width": shape[1], "height": shape[0], "image_text": "Dose (Gy)"}


# --------------------------------------------------------------------------------------------------------------
# measurement


def image_processor():
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})


def rate(refs: list, order: np.ndarray, loader: ImageLoader, processor, warmup: int) -> float:
    """Images/s of read + decode + preprocess over `order` (one process, one core), the first `warmup` not timed."""
    for index in order[:warmup]:
        processor(images=[loader(refs[index])], return_tensors="pt")
    started = time.perf_counter()
    for index in order[warmup:]:
        processor(images=[loader(refs[index])], return_tensors="pt")
    return (len(order) - warmup) / (time.perf_counter() - started)


def read_rate(refs: list, order: np.ndarray, loader: ImageLoader) -> float:
    """PNG bytes fetched per second, no decoding: the container's own cost."""
    started = time.perf_counter()
    for index in order:
        ref = refs[index]
        loader.png(*ref) if isinstance(ref, tuple) else Path(ref).read_bytes()
    return len(order) / (time.perf_counter() - started)


class _Images:
    """A map-style dataset for the DataLoader run: ref -> pixel values (the same work as `rate`)."""

    def __init__(self, refs: list):
        self.refs, self.loader, self.processor = refs, ImageLoader(), image_processor()

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int):
        return self.processor(images=[self.loader(self.refs[index])], return_tensors="pt")["pixel_values"][0]


def loader_rate(refs: list, order: np.ndarray, workers: int) -> float:
    """Images/s through a torch DataLoader with `workers` forked workers (batch 8, the first batches not timed)."""
    import torch

    loader = torch.utils.data.DataLoader(_Images(refs), batch_size=8, sampler=order.tolist(), num_workers=workers)
    batches = iter(loader)
    for _ in range(min(2 * workers, len(loader) - 1)):  # every worker started and warm
        next(batches)
    started, count = time.perf_counter(), 0
    for batch in batches:
        count += len(batch)
    return count / (time.perf_counter() - started)


def measure(paths: list, refs: list, args) -> dict:
    """Alternating rounds loose/HDF5 over the same shuffled images; medians of the rounds' rates and ratios."""
    rng = np.random.default_rng(args.seed + 1)
    order = rng.permutation(len(paths))[: args.measure]
    processor, loader = image_processor(), ImageLoader()
    rounds = np.array_split(order, args.rounds)
    warmup = max(1, min(20, len(rounds[0]) // 10))
    full = {"loose": [], "hdf5": []}
    layouts = {"loose": paths, "hdf5": refs}
    for number, chunk in enumerate(rounds):
        for name in sorted(layouts, reverse=bool(number % 2)):  # which layout goes first alternates too
            full[name].append(rate(layouts[name], chunk, loader, processor, warmup))
    result = {name: float(np.median(values)) for name, values in full.items()}
    # paired per round: a load change on this shared machine shifts both rates of a round alike
    result["ratio"] = float(np.median(np.divide(full["hdf5"], full["loose"])))
    result["read_loose"] = read_rate(paths, order, ImageLoader())
    result["read_hdf5"] = read_rate(refs, order, ImageLoader())
    # the same ratio from the container's extra cost per image, on top of the loose layout's full cost
    result["extra_ms"] = 1e3 * (1 / result["read_hdf5"] - 1 / result["read_loose"])
    result["ratio_from_reads"] = 1 / (1 + result["extra_ms"] / 1e3 * result["loose"])
    if args.workers:
        result["workers_loose"] = loader_rate(paths, order, args.workers)
        result["workers_hdf5"] = loader_rate(refs, order, args.workers)
    return result


def report(result: dict, args, total_bytes: int, write_s: float) -> None:
    ratio = result["ratio"]
    shards_per_50k = -(-SAMPLES // args.per_shard)
    print(f"{args.images} figures, {total_bytes / args.images / 1024:.0f} KiB per PNG on average, written in "
          f"{write_s:.1f} s; {args.measure} shuffled reads in {args.rounds} alternating rounds per layout")
    print(f"{'layout':<8} {'read+decode+preprocess img/s/core':>34} {'bytes read only img/s':>22}")
    for name in ("loose", "hdf5"):
        print(f"{name:<8} {result[name]:>34.1f} {result['read_' + name]:>22.0f}")
    print(f"HDF5 / loose: {ratio:.3f}, median of the rounds' ratios (goal >= 0.90)")
    print(f"HDF5 / loose from the read costs alone: {result['ratio_from_reads']:.3f} (HDF5 costs "
          f"{result['extra_ms']:.2f} ms more per image; steadier than the ratio above on a loaded machine)")
    if args.workers:
        workers_ratio = result["workers_hdf5"] / result["workers_loose"]
        print(f"DataLoader, {args.workers} workers: loose {result['workers_loose']:.1f} img/s, hdf5 "
              f"{result['workers_hdf5']:.1f} img/s, HDF5 / loose {workers_ratio:.3f}")
    print(f"files per {SAMPLES} samples: loose {SAMPLES}, HDF5 {shards_per_50k} at {args.per_shard} per shard "
          f"(goal <= 100)")
    print(json.dumps({"images": args.images, "measured": args.measure, **{k: round(v, 3) for k, v in result.items()},
                      "files_per_50k_loose": SAMPLES,
                      "files_per_50k_hdf5": shards_per_50k}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1200, help="synthetic figures written")
    parser.add_argument("--shards", type=int, default=4, help="HDF5 shards they are written to")
    parser.add_argument("--measure", type=int, default=600, help="shuffled images read per layout")
    parser.add_argument("--rounds", type=int, default=6, help="alternating loose/HDF5 rounds")
    parser.add_argument("--workers", type=int, default=0, help="also measure a DataLoader with this many workers")
    parser.add_argument("--per-shard", type=int, default=1000, help="samples per shard for the file count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="keep the corpus here (default: a temporary folder, removed)")
    args = parser.parse_args()
    args.measure = min(args.measure, args.images)
    cv2.setNumThreads(1)  # per core: no hidden OpenCV threads
    out = args.out or Path(tempfile.mkdtemp(prefix="ldrt-train-data-"))
    try:
        started = time.perf_counter()
        paths, refs, total = write_corpus(out, args.images, args.shards, args.seed)
        write_s = time.perf_counter() - started
        report(measure(paths, refs, args), args, total, write_s)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
