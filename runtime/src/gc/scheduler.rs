//! When passes run (containerd `gc/scheduler/scheduler.go`): a startup pass after
//! `startup_delay`; then a pass when triggered (`schedule_and_wait`), when deletions reach
//! `deletion_threshold`, or — no sooner than the pause threshold allows (the interval is the
//! average pass time / `pause_threshold` minus that time) — when anything was deleted or
//! `mutation_threshold` mutations happened. Waiters get the stats of the next completed pass.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{GcConfig, GcStats};
use crate::{Error, Result, Runtime};

enum Msg {
    Mutation { deletion: bool, at: Instant },
    Trigger(oneshot::Sender<Result<GcStats>>),
}

/// The scheduler's handle; the loop runs in a task of its own.
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Msg>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Msg>>>,
    config: GcConfig,
}

impl Scheduler {
    pub(crate) fn new(mut config: GcConfig) -> Scheduler {
        config.pause_threshold = config.pause_threshold.clamp(0.0, 0.5);
        let (tx, rx) = mpsc::unbounded_channel();
        Scheduler {
            tx,
            rx: Mutex::new(Some(rx)),
            config,
        }
    }

    /// Starts the loop (once).
    pub(crate) fn start(&self, rt: Runtime) {
        let Some(rx) = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        tokio::spawn(Loop::new(self.config.clone()).run(rt, rx));
    }

    /// Counts a mutation (and whether it deleted something).
    pub(crate) fn mutated(&self, deletion: bool) {
        let _ = self.tx.send(Msg::Mutation {
            deletion,
            at: Instant::now(),
        });
    }

    /// Asks for a pass and waits for it.
    pub(crate) async fn schedule_and_wait(&self) -> Result<GcStats> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Trigger(tx))
            .map_err(|_| Error::Unavailable("garbage collector stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("garbage collector stopped".into()))?
    }
}

/// The scheduling state (containerd's loop variables).
struct Loop {
    config: GcConfig,
    next: Option<Instant>,
    last: Option<Instant>,
    interval: Duration,
    gc_time: Duration,
    collections: u32,
    triggered: bool,
    deletions: usize,
    mutations: usize,
    waiters: Vec<oneshot::Sender<Result<GcStats>>>,
}

impl Loop {
    fn new(config: GcConfig) -> Loop {
        let next =
            (config.startup_delay > Duration::ZERO).then(|| Instant::now() + config.startup_delay);
        Loop {
            config,
            next,
            last: None,
            interval: Duration::from_secs(1),
            gc_time: Duration::ZERO,
            collections: 0,
            triggered: false,
            deletions: 0,
            mutations: 0,
            waiters: Vec::new(),
        }
    }

    async fn run(mut self, rt: Runtime, mut rx: mpsc::UnboundedReceiver<Msg>) {
        loop {
            let timer = async {
                match self.next {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.on_message(m),
                    None => return,
                },
                _ = timer => {
                    if self.idle() {
                        self.next = Some(Instant::now() + self.interval);
                    } else {
                        self.collect(&rt).await;
                    }
                }
            }
        }
    }

    /// Nothing to do when the timer fires: reschedule instead of collecting.
    fn idle(&self) -> bool {
        !self.triggered
            && self.last.is_some()
            && self.deletions == 0
            && (self.config.mutation_threshold == 0
                || self.mutations < self.config.mutation_threshold)
    }

    fn on_message(&mut self, m: Msg) {
        match m {
            Msg::Mutation { deletion, at } => {
                if self.last.is_some_and(|l| l > at) {
                    return;
                }
                self.deletions += usize::from(deletion);
                self.mutations += 1;
            }
            Msg::Trigger(w) => {
                self.triggered = true;
                self.waiters.push(w);
            }
        }
        let c = &self.config;
        let due = self.triggered
            || (c.deletion_threshold > 0 && self.deletions >= c.deletion_threshold)
            || (self.next.is_none()
                && ((c.deletion_threshold == 0 && self.deletions > 0)
                    || (c.mutation_threshold > 0 && self.mutations >= c.mutation_threshold)));
        let soon = Instant::now() + c.schedule_delay;
        if due && self.next.is_none_or(|n| n > soon) {
            self.next = Some(soon);
        }
    }

    async fn collect(&mut self, rt: &Runtime) {
        let res = rt.run_pass().await;
        let now = Instant::now();
        match &res {
            Ok(stats) => {
                self.gc_time += stats.total;
                self.collections += 1;
                self.triggered = false;
                self.deletions = 0;
                self.mutations = 0;
                if self.config.pause_threshold > 0.0 {
                    let avg = self.gc_time.as_secs_f64() / f64::from(self.collections);
                    let secs = avg / self.config.pause_threshold - avg;
                    self.interval = Duration::from_secs_f64(secs.max(0.0));
                }
                self.next = Some(now + self.interval);
            }
            Err(e) => {
                tracing::error!(error = %e, "garbage collection failed");
                self.next = Some(now + self.interval + Duration::from_secs(1));
            }
        }
        self.last = Some(now);
        for w in self.waiters.drain(..) {
            let _ = w.send(match &res {
                Ok(s) => Ok(s.clone()),
                Err(e) => Err(Error::Internal(format!("garbage collection failed: {e}"))),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn looped(c: GcConfig) -> Loop {
        let mut l = Loop::new(c);
        l.next = None;
        l.last = Some(Instant::now() - Duration::from_secs(10));
        l
    }

    #[test]
    fn a_trigger_schedules_at_once() {
        let mut l = looped(GcConfig::default());
        let (tx, _rx) = oneshot::channel();
        l.on_message(Msg::Trigger(tx));
        assert!(l.next.is_some_and(|n| n <= Instant::now()));
    }

    #[test]
    fn a_deletion_schedules_when_nothing_is_scheduled() {
        let mut l = looped(GcConfig::default());
        l.on_message(Msg::Mutation {
            deletion: true,
            at: Instant::now(),
        });
        assert!(l.next.is_some());
    }

    #[test]
    fn mutations_below_the_threshold_do_not_schedule() {
        let mut l = looped(GcConfig::default());
        for _ in 0..99 {
            l.on_message(Msg::Mutation {
                deletion: false,
                at: Instant::now(),
            });
        }
        assert!(l.next.is_none());
        l.on_message(Msg::Mutation {
            deletion: false,
            at: Instant::now(),
        });
        assert!(l.next.is_some());
    }

    #[test]
    fn deletion_threshold_overrides_a_later_schedule() {
        let c = GcConfig {
            deletion_threshold: 2,
            ..GcConfig::default()
        };
        let mut l = looped(c);
        let later = Instant::now() + Duration::from_secs(60);
        l.next = Some(later);
        l.on_message(Msg::Mutation {
            deletion: true,
            at: Instant::now(),
        });
        assert_eq!(l.next, Some(later));
        l.on_message(Msg::Mutation {
            deletion: true,
            at: Instant::now(),
        });
        assert!(l.next.is_some_and(|n| n < later));
    }

    #[test]
    fn events_older_than_the_last_pass_are_ignored() {
        let mut l = looped(GcConfig::default());
        let old = Instant::now() - Duration::from_secs(60);
        l.on_message(Msg::Mutation {
            deletion: true,
            at: old,
        });
        assert_eq!(l.deletions, 0);
        assert!(l.next.is_none());
    }

    #[test]
    fn idle_timer_reschedules_without_collecting() {
        let mut l = looped(GcConfig::default());
        assert!(l.idle());
        l.deletions = 1;
        assert!(!l.idle());
    }
}
