#!/usr/bin/env python3
"""A minimal service manager for tests, doing what a systemd .socket unit does: it binds unix
sockets once (mode 0660) and runs a daemon with them passed by the socket-activation protocol
(fds 3.., LISTEN_FDS, LISTEN_PID = the daemon's pid). The sockets live as long as this process,
across the daemon's restarts.

  SIGUSR1  restart the daemon: SIGTERM, wait for its exit, start it again (like
           `systemctl restart`)
  SIGUSR2  the same with SIGKILL instead of SIGTERM
  SIGTERM  stop the daemon (SIGTERM) and exit

The daemon's current pid is kept in --pidfile. A daemon that exits by itself is not restarted
(a hand-over's predecessor exits after its successor, which is not our child, took over).

usage: listen_holder.py --socket PATH [--socket PATH ...] --pidfile FILE -- CMD [ARG ...]
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def bind(path):
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    os.chmod(path, 0o660)
    s.listen(1024)
    return s


def start(cmd, fds, pidfile):
    def place():
        for i, fd in enumerate(fds):
            if fd != 3 + i:
                os.dup2(fd, 3 + i)
            os.set_inheritable(3 + i, True)

    env = dict(os.environ, LISTEN_FDS=str(len(fds)))
    env.pop("LISTEN_FDNAMES", None)
    # LISTEN_PID must be the daemon's own pid: the shell sets it and execs the daemon.
    wrapped = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"] + cmd
    # fds are placed by dup2 in the child; close_fds would close them again.
    p = subprocess.Popen(wrapped, env=env, preexec_fn=place, close_fds=False)
    with open(pidfile, "w") as f:
        f.write(str(p.pid))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", action="append", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    socks = [bind(p) for p in a.socket]
    # Our own descriptors must not collide with 3.. in the child: move them above.
    fds = [os.dup(s.fileno()) for s in socks]
    fds = [fcntl_high(fd, 100) for fd in fds]
    requests = []
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: requests.append(s))
    proc = start(cmd, fds, a.pidfile)
    while True:
        if not requests:
            time.sleep(0.05)
            if proc is not None and proc.poll() is not None:
                print(f"listen_holder: daemon exited with {proc.returncode}", file=sys.stderr)
                proc = None
            continue
        sig = requests.pop(0)
        if proc is not None:
            proc.send_signal(signal.SIGKILL if sig == signal.SIGUSR2 else signal.SIGTERM)
            proc.wait()
        if sig == signal.SIGTERM:
            return 0
        proc = start(cmd, fds, a.pidfile)


def fcntl_high(fd, low):
    import fcntl

    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return high


if __name__ == "__main__":
    sys.exit(main())
