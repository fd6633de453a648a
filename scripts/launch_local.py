"""Runs one command as an N-process JAX job on this machine (the code path of a multi-host job):

  python scripts/launch_local.py --num_processes=2 --devices_per_process=2 -- \
      python scripts/run.py --config=configs/lenet5_digits.py --workdir=runs/lenet5_digits_2p

Each process gets ``--multihost`` and its coordinator flags, and M fake CPU devices. Exits with
process 0's exit code (else the first non-zero one). Ctrl-C / SIGTERM stop every process at the
same step, after checkpointing it (the same command resumes)."""

import sys

from absl import app, flags

from cnnlab import launch

NUM_PROCESSES = flags.DEFINE_integer("num_processes", 2, "Processes to start.", lower_bound=1)
DEVICES = flags.DEFINE_integer("devices_per_process", 1, "Fake CPU devices per process.",
                               lower_bound=1)
PORT = flags.DEFINE_integer("port", 0, "Coordinator port (0: a free one).")


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("give the command to run after '--'")
  sys.exit(launch.launch_local(argv[1:], num_processes=NUM_PROCESSES.value,
                               devices_per_process=DEVICES.value, port=PORT.value or None))


if __name__ == "__main__":
  app.run(main)
