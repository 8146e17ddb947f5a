"""A profile consumer run as its own process by the crash tests: it can kill itself with SIGKILL inside a
batch's transaction (after writing the state, before the commit), or run slowly so that it can be killed."""

from __future__ import annotations

import argparse
import os
import signal
import time

from data.log import open_log
from data.projections.base import Projector
from data.projections.profile import ProfileProjection
from data.projections.store import open_state_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--state", required=True)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--kill-at-batch", type=int, default=0)
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    batches = 0

    def before_commit(position: int) -> None:
        nonlocal batches
        batches += 1
        if args.sleep:
            time.sleep(args.sleep)
        if batches == args.kill_at_batch:
            os.kill(os.getpid(), signal.SIGKILL)

    projector = Projector(open_log(args.log), open_state_store(args.state), ProfileProjection(), args.batch,
                          before_commit=before_commit)
    projector.catch_up()


if __name__ == "__main__":
    main()
