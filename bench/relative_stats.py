"""Why relative rules use a robust z (median and MAD) and not a mean/std z-score: the shape of the
real OI changes in ../shared/data.

For every real series (bench/replay_rules.py's loaders), downsampled to the coarse samples the
engine uses (the first of each 5-minute bucket, oi.coarse), and for windows of 5 min (where the
data resolves them), 1 h and 4 h: the changes over the window at every covered sample
(alerts.relative.window_changes), their excess kurtosis (0 for a normal distribution), the plain
standard deviation against the robust scale 1.4826 x MAD (equal for a normal distribution), and
the share of changes beyond 4 and 8 of each (a normal distribution puts 6e-5 beyond 4 sigmas).

    .venv/bin/python bench/relative_stats.py
"""

import statistics
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from replay_rules import DEFAULT_DATA_DIR, load_all  # noqa: E402

from alerts.relative import MAD_TO_SIGMA, window_changes  # noqa: E402
from oi.coarse import first_per_bucket  # noqa: E402

WINDOWS = (("5m", 300), ("1h", 3600), ("4h", 14400))


def share_beyond(changes: list[float], k: float, centre: float, scale: float) -> float:
    return sum(abs(c - centre) > k * scale for c in changes) / len(changes)


def excess_kurtosis(values: list[float]) -> float:
    mean = statistics.fmean(values)
    m2 = statistics.fmean((v - mean) ** 2 for v in values)
    m4 = statistics.fmean((v - mean) ** 4 for v in values)
    return m4 / (m2 * m2) - 3 if m2 else float("nan")


def main() -> None:
    print(f"Changes of real OI series over a window ({DEFAULT_DATA_DIR}), on 5-minute samples")
    header = (f"{'series [symbol]':<44} {'W':>3} {'n':>6} {'kurt':>8} {'std':>8} {'robust':>8} "
              f"{'std/rob':>7} {'>4std':>7} {'>4rob':>7} {'>8rob':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    ratios = []
    for series in load_all(DEFAULT_DATA_DIR):
        times = [row[0] for row in series.rows]
        keep = first_per_bucket(times)
        coarse_t = [times[i] for i in keep]
        coarse_v = [series.rows[i][1] for i in keep]
        for label, window_sec in WINDOWS:
            if window_sec * 1000 < 2 * series.interval_ms:
                continue
            changes = [c for _t, c in window_changes(coarse_t, coarse_v, window_sec)]
            if len(changes) < 100:
                continue
            median = statistics.median(changes)
            robust = MAD_TO_SIGMA * statistics.median(abs(c - median) for c in changes)
            std = statistics.pstdev(changes)
            mean = statistics.fmean(changes)
            if not robust:
                continue
            ratios.append(std / robust)
            name = f"{series.label[:30]} [{series.symbol}]"
            print(
                f"{name[:44]:<44} {label:>3} {len(changes):>6} {excess_kurtosis(changes):>8.1f} "
                f"{std:>8.4f} {robust:>8.4f} {std / robust:>7.2f} "
                f"{share_beyond(changes, 4, mean, std):>7.2%} "
                f"{share_beyond(changes, 4, median, robust):>7.2%} "
                f"{share_beyond(changes, 8, median, robust):>7.2%}"
            )
    print(f"std / robust scale: median {statistics.median(ratios):.2f}, range "
          f"{min(ratios):.2f}..{max(ratios):.2f} over {len(ratios)} series x windows")  # fmt: skip
    print("  kurt = excess kurtosis (0 if normal); >4std = share beyond 4 plain sigmas around the "
          "mean; >4rob, >8rob = beyond 4 and 8 robust sigmas around the median")  # fmt: skip
    print(f"rerun: cd {PROJECT_ROOT} && .venv/bin/python bench/relative_stats.py")


if __name__ == "__main__":
    main()
