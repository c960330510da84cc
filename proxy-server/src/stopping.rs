//! The daemon's "shutting down" signal, for calls that would otherwise hold a graceful
//! shutdown open as long as a container runs (`Tasks.Wait`) or a client listens
//! (`Events.Subscribe`): they end with Unavailable, as when containerd restarts.

use tokio::sync::watch;

/// Resolves once the daemon stops serving. Cheap to clone.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    pub fn new(rx: watch::Receiver<bool>) -> Stopping {
        Stopping(rx)
    }

    /// Waits until the daemon is stopping.
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// What a call cut short by a shutdown answers.
pub fn unavailable() -> tonic::Status {
    tonic::Status::unavailable("strata is shutting down: call again once it is back")
}
