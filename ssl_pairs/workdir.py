"""A workdir belongs to one run: an exclusive lock held for the run's life.

Two processes training (or one training and one evaluation writing) in the
same workdir would interleave checkpoints, metrics and eval.json. Every
program that writes into a workdir takes ``<workdir>/.lock`` with ``flock``:
an OS-level lock that the kernel drops when the process ends, however it
ends, so a SIGKILLed run never leaves a stale lock behind. The file holds the
holder's pid, host and purpose, which the refusal names. In a multi-host run
only process 0 takes it (the workdir is on a file system all hosts share;
flock on NFS v4 is a real lock).
"""

import contextlib
import fcntl
import os
import socket
import time

from ssl_pairs.errors import UserError

LOCK_NAME = '.lock'


def prepare(workdir: str) -> str:
  """The absolute workdir, created; one sentence when it cannot be."""
  workdir = os.path.abspath(os.path.expanduser(workdir))
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir {workdir} is an existing file, not a '
                    'folder; pass a folder (new or of an earlier run).')
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f'.write_test.{os.getpid()}')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    raise UserError(f'Cannot write to the workdir {workdir} '
                    f'({e.strerror or e}); choose a writable --workdir.') from e
  return workdir


@contextlib.contextmanager
def exclusive(workdir: str, purpose: str, enabled: bool = True):
  """Holds ``workdir``'s lock for the block; refuses if another process has it.

  Args:
    workdir: an existing folder.
    purpose: what the holder does ('training', 'evaluation'), for the message.
    enabled: False on the non-zero processes of a multi-host run.

  Raises:
    UserError: another live process holds the lock.
  """
  if not enabled:
    yield
    return
  path = os.path.join(workdir, LOCK_NAME)
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 512, 0).decode(errors='replace').split()
      who = (f'pid {holder[0]} on host {holder[1]} ({holder[2]})'
             if len(holder) >= 3 else 'another process')
      raise UserError(f'{workdir} is in use by {who}; wait for it to end or '
                      'use another --workdir.') from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{os.getpid()} {socket.gethostname()} {purpose} '
                  f'{time.strftime("%Y-%m-%dT%H:%M:%S")}\n'.encode(), 0)
    try:
      yield
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)
