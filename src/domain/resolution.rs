//! What a person said when they marked something that needed them as dealt with.

use chrono::{DateTime, Utc};

/// Someone looked at an item that needed a person and said why it needs nothing more.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub at: DateTime<Utc>,
    /// The actor's id and label, as the audit trail has them.
    pub by_id: String,
    pub by_label: String,
    pub note: String,
}
