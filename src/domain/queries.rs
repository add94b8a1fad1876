//! What the lists look for: the filters and keyset position of the payment search and the refunds
//! register, as the edges parse them and the store reads them.

use chrono::{DateTime, Utc};

use super::{PaymentId, PaymentStatus};

/// Filters and position for listing payments, newest first.
#[derive(Debug, Clone, Default)]
pub struct PaymentQuery {
    pub request_ref: Option<String>,
    /// The payer's email address, any case (the data-protection officer's search).
    pub email: Option<String>,
    /// Our own id.
    pub id: Option<String>,
    /// The provider's id for the payment.
    pub provider_payment_id: Option<String>,
    /// Pence.
    pub amount: Option<i64>,
    pub status: Option<PaymentStatus>,
    pub service: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    /// Only payments strictly older than this (created_at, id) position.
    pub before: Option<(DateTime<Utc>, PaymentId)>,
    pub limit: u32,
}

/// Which refunds the register lists: every filter optional, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegisterQuery {
    pub payment_id: Option<PaymentId>,
    pub state: Option<super::refund::RefundState>,
    pub service: Option<String>,
    /// Part of the requester's or approver's name (any case).
    pub requested_by: Option<String>,
    pub decided_by: Option<String>,
    /// When asked for: [from, to).
    pub requested_from: Option<DateTime<Utc>>,
    pub requested_to: Option<DateTime<Utc>>,
    /// Keyset paging: rows before this (requested_at, id).
    pub before: Option<(DateTime<Utc>, String)>,
    pub limit: u32,
}
