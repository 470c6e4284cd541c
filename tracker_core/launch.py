"""Process start-up of the ``trackpaint`` and ``trackpaint-gui`` commands: what has to be set
before torch is imported, then the command itself.

OpenMP reads its wait policy once, when the library loads (at ``import torch``). libgomp's
default lets a thread that waits at the end of a parallel region spin for up to 300,000 rounds
while no more threads run than there are CPUs; on a busy 2-core machine its partner thread is
descheduled, and the spinning takes the very core it waits for. Measured on the bear sample
(``benchmarks/gui_vs_cli.py``, see RESULTS.md): propagation on the main thread at load average
~13 took 7,100-7,400 ms/frame and 1,800 ms of CPU per frame with the default, 290 ms/frame with
``OMP_WAIT_POLICY=PASSIVE``. (The GUI's worker thread was hit far less: a second OpenMP team
makes libgomp throttle the spinning.) :func:`prepare_process` therefore sets
``OMP_WAIT_POLICY=PASSIVE`` unless the user has set it; it must run before torch loads, so this
module imports nothing heavy, and it changes nothing when merely imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

PROCESS_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_process(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set each :data:`PROCESS_ENV` variable the user has not set (in ``environ``, default
    ``os.environ``); returns the ones it set. Call before ``import torch`` — afterwards it has
    no effect on this process (a warning is not worth it: child processes still inherit it)."""
    env = os.environ if environ is None else environ
    added = {k: v for k, v in PROCESS_ENV.items() if k not in env}
    env.update(added)
    return added


def cli() -> int:
    """The ``trackpaint`` command: :func:`prepare_process`, then :func:`tracker_core.cli.main`."""
    prepare_process()
    from tracker_core.cli import main

    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(cli())
