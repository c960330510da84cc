pub mod content;
pub mod snapshots;
