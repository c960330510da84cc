//! The write barrier of a pass in progress: every mutation records the nodes it created or
//! changed, and the sweep keeps whatever those nodes reach. Together with the gate this makes
//! marking without a lock safe: an object unreachable when scanned can only become reachable
//! through a mutation, which the barrier saw.

use std::collections::HashSet;
use std::sync::Mutex;

use super::mark::Node;

#[derive(Debug, Default)]
struct State {
    active: bool,
    touched: HashSet<Node>,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Barrier {
    state: Mutex<State>,
}

impl Barrier {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `nodes` if a pass is in progress.
    pub fn touch(&self, nodes: impl IntoIterator<Item = Node>) {
        let mut s = self.state();
        if s.active {
            s.touched.extend(nodes);
        }
    }

    /// Starts recording (before the pass reads anything).
    pub fn begin(&self) {
        let mut s = self.state();
        s.active = true;
        s.touched.clear();
    }

    /// What was recorded so far (recording goes on).
    pub fn take(&self) -> HashSet<Node> {
        std::mem::take(&mut self.state().touched)
    }

    /// Stops recording.
    pub fn end(&self) {
        let mut s = self.state();
        s.active = false;
        s.touched.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gc::mark::Resource;

    #[test]
    fn records_only_while_a_pass_runs() {
        let b = Barrier::default();
        let n = |k: &str| Node::new(Resource::Image, "ns", k);
        b.touch([n("before")]);
        b.begin();
        b.touch([n("during")]);
        assert_eq!(b.take(), [n("during")].into());
        b.end();
        b.touch([n("after")]);
        b.begin();
        assert!(b.take().is_empty());
    }
}
