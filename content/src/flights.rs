//! Writes a transport acknowledged before they landed ([`crate::Writer::in_flight`]), per
//! ingest: the Status of an ingest waits for them, so that it reports the offset the writer's
//! client was given, as it would had each write landed before its acknowledgment.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The ingests (by record id) with acknowledged writes still landing.
#[derive(Debug, Default)]
pub(crate) struct Flights(Mutex<HashMap<String, Arc<Gate>>>);

/// Writes of one ingest still landing.
#[derive(Debug, Default)]
struct Gate {
    landing: Mutex<usize>,
    landed: Condvar,
}

/// One acknowledged write of an ingest until it has landed (or failed): dropping it lets the
/// ingest's Status through.
#[derive(Debug)]
pub struct Flight {
    flights: Arc<Flights>,
    id: String,
    gate: Arc<Gate>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Flights {
    /// A write of ingest `id` is acknowledged and about to land.
    pub(crate) fn enter(self: &Arc<Self>, id: &str) -> Flight {
        // Counted under the map's lock: a last flight dropping meanwhile cannot remove the gate.
        let mut map = lock(&self.0);
        let gate = map.entry(id.to_string()).or_default().clone();
        *lock(&gate.landing) += 1;
        drop(map);
        Flight {
            flights: self.clone(),
            id: id.to_string(),
            gate,
        }
    }

    /// Returns once every acknowledged write of ingest `id` has landed.
    pub(crate) fn wait(&self, id: &str) {
        let Some(gate) = lock(&self.0).get(id).cloned() else {
            return;
        };
        let mut landing = lock(&gate.landing);
        while *landing > 0 {
            landing = gate
                .landed
                .wait(landing)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut map = lock(&self.flights.0);
        let mut landing = lock(&self.gate.landing);
        *landing -= 1;
        if *landing == 0 {
            self.gate.landed.notify_all();
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn wait_returns_at_once_without_flights_and_after_the_last_one_lands() {
        let flights = Arc::new(Flights::default());
        flights.wait("a");
        let (one, two) = (flights.enter("a"), flights.enter("a"));
        let other = flights.enter("b");
        let waiter = {
            let flights = flights.clone();
            std::thread::spawn(move || flights.wait("a"))
        };
        std::thread::sleep(Duration::from_millis(50));
        drop(one);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "one write of a is still landing");
        drop(two);
        waiter.join().unwrap();
        assert_eq!(lock(&flights.0).len(), 1, "only b's gate is left");
        drop(other);
        assert!(lock(&flights.0).is_empty());
    }
}
