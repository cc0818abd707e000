"""Decision ideas of issue 26's second round, cross-validated as bench/tune_cv.py does, without
changing the product: each replaces one step for the run (docs/farfield.md, "Ideas of round 2").

usage: python bench/ideas_cv.py calibrate|relative [--engine E] [--jobs N] [--grid NAME=V,V ...]

calibrate: each recording's scores mapped to (s - lo) / (hi - lo), clipped to [0, 1], lo and hi
the 10th and 99.9th percentiles of its scores so far (at least its first 30 s; 1 s steps).
relative: speech ends below max(leave_threshold, 0.7 x the running segment's peak score)
(tune_cv decides each recording in one push, so a segment's peak starts at its first frame).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tune_cv  # noqa: E402

import segmenter.profiles.precise as precise  # noqa: E402

LOW, HIGH, FIRST, STEP = 10.0, 99.9, 3000, 100  # percentiles; frames
RATIO = 0.7


def calibrated(scores: np.ndarray) -> np.ndarray:
    """Scores stretched to the recording's own range so far (idea a)."""
    out = np.empty_like(scores)
    for k in range(0, len(scores), STEP):
        seen = scores[: max(k + STEP, FIRST)]
        lo, hi = np.percentile(seen, LOW), np.percentile(seen, HIGH)
        out[k : k + STEP] = np.clip((scores[k : k + STEP] - lo) / max(hi - lo, 0.05), 0, 1)
    return out.astype(np.float32)


def relative_hysteresis(scores: np.ndarray, on: bool, enter: float, leave: float) -> np.ndarray:
    """Hysteresis whose leave threshold follows the segment's peak (idea b)."""
    out = np.zeros(len(scores), bool)
    peak = 0.0
    for i, x in enumerate(scores.tolist()):
        if on and x < max(leave, RATIO * peak):
            on = False
        elif on:
            peak = max(peak, x)
        elif x >= enter:
            on, peak = True, x
        out[i] = on
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("idea", choices=("calibrate", "relative"))
    ap.add_argument("--engine", choices=("fsmn", "silero", "fusion"), default="fusion")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--grid", action="append", default=[], metavar="NAME=V,V")
    args = ap.parse_args()
    for axis in args.grid:
        name, values = axis.split("=")
        tune_cv.GRID[name] = tuple(type(tune_cv.GRID[name][0])(v) for v in values.split(","))
    load = tune_cv.load
    if args.idea == "calibrate":

        def load_calibrated(engine, shared=tune_cv.SHARED):
            return [
                dataclasses.replace(r, scores=calibrated(r.scores)) for r in load(engine, shared)
            ]

        tune_cv.load = load_calibrated
    else:  # the workers are forked after this, so they decide with it too
        precise.hysteresis = relative_hysteresis
    cv = tune_cv.cross_validate(args.engine, jobs=args.jobs)
    tune_cv.print_table(cv)
    tune_cv.print_shortfalls(cv, tune_cv.load(args.engine))


if __name__ == "__main__":
    main()
