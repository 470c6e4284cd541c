"""Trackpaint's headless core: video, propagation, project document, export. Never imports Qt.

Importing it caps how long torch's OpenMP threads (libgomp) spin-wait between parallel regions
at ``GOMP_SPINCOUNT=20000`` rounds (about 0.2 ms) instead of libgomp's 300,000 (about 3 ms),
unless the environment already sets it. libgomp reads it once, when torch loads, so this must
run before ``import torch``. On a 2-core machine with two other busy processes the long spin made
propagation 2-3x slower (a waiting thread burns the core its descheduled partner needs); the
short one costs 0-3 % on a quiet machine (``benchmarks/gui_vs_cli.py --omp default,count20000``,
``benchmarks/RESULTS.md``).
"""

import os as _os

SPIN_COUNT = "20000"
_os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)

__version__ = "0.1.0"
