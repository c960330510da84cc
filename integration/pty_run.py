#!/usr/bin/env python3
"""Runs a command on a fresh pseudo-terminal of a given size and prints what it writes.

    pty_run.py ROWS COLS CMD [ARG...]

For `ctr run --tty` in CI, where no terminal exists: ctr reads the size from its terminal and
sends it to the task (ResizePty). Exits with the command's status."""

import fcntl
import os
import pty
import struct
import sys
import termios


def main():
    rows, cols, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    fd, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    pid = os.fork()
    if pid == 0:
        os.close(fd)
        os.setsid()
        fcntl.ioctl(child, termios.TIOCSCTTY, 0)
        for n in (0, 1, 2):
            os.dup2(child, n)
        os.execvp(cmd[0], cmd)
    os.close(child)
    out = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode("utf-8", "replace").replace("\r", ""))
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
