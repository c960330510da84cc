//! Reaping every child (the shim is a child subreaper: container processes become its
//! children) and handing each exit to whoever waits for that pid — including exits that happen
//! before anyone knows the pid (a container that dies before its pid file is read).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

#[derive(Default)]
struct Table {
    waiters: HashMap<i32, Sender<u32>>,
    unclaimed: HashMap<i32, u32>,
}

/// See the module docs. Cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    table: Arc<Mutex<Table>>,
}

/// containerd's exit status: the code, or 128 + the signal.
fn status_of(ws: WaitStatus) -> Option<(i32, u32)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

impl Reaper {
    pub fn start() -> Reaper {
        let r = Reaper {
            table: Arc::default(),
        };
        let table = r.table.clone();
        std::thread::spawn(move || {
            loop {
                match waitpid(Pid::from_raw(-1), None) {
                    Ok(ws) => {
                        if let Some((pid, status)) = status_of(ws) {
                            let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
                            match t.waiters.remove(&pid) {
                                Some(tx) => {
                                    let _ = tx.send(status);
                                }
                                None => {
                                    t.unclaimed.insert(pid, status);
                                }
                            }
                        }
                    }
                    // No child right now: look again shortly (a new one may be forked any time).
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        r
    }

    /// A receiver of `pid`'s exit status (immediately ready when it has already exited).
    pub fn subscribe(&self, pid: i32) -> Receiver<u32> {
        let (tx, rx) = channel();
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        match t.unclaimed.remove(&pid) {
            Some(status) => {
                let _ = tx.send(status);
            }
            None => {
                t.waiters.insert(pid, tx);
            }
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    // One test only: the reaper waits for any child of the test process.
    #[test]
    fn exits_reach_their_subscriber_even_when_they_come_first() {
        let r = Reaper::start();
        let early = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Exited and reaped before anyone asked: kept for the subscriber.
        assert_eq!(r.subscribe(early.id() as i32).recv().unwrap(), 3);
        let killed = Command::new("sleep").arg("100").spawn().unwrap();
        let rx = r.subscribe(killed.id() as i32);
        nix::sys::signal::kill(Pid::from_raw(killed.id() as i32), nix::sys::signal::SIGKILL)
            .unwrap();
        assert_eq!(
            rx.recv().unwrap(),
            128 + 9,
            "a signal is 128 + its number, as containerd"
        );
    }
}
