//! Income systems the day's takings are posted to: one trait, and LocalGov IMS's API client.

use async_trait::async_trait;

pub mod localgov_ims;

/// Why a post did not go through, and what that says about whether it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncomeSystemError {
    /// The income system refused the request (HTTP 4xx): it took nothing; a person must look.
    #[error("the income system refused the batch: {0}")]
    Refused(String),
    /// No connection was made: certainly nothing was sent.
    #[error("the income system could not be reached: {0}")]
    NotSent(String),
    /// Sent, but no answer came (a timeout, a lost connection, a server error): it may have taken
    /// some or all of it. Before anything is sent again, ask what it holds.
    #[error("the income system did not answer: {0}")]
    Unknown(String),
    /// The request held a card number, so it was not sent.
    #[error("the batch held a card number and was not sent")]
    CardData,
}

/// An income system that takes a batch pushed to it.
#[async_trait]
pub trait IncomeSystem: Send + Sync + 'static {
    /// Sends one import (the batch's document, or the part of it still to go).
    async fn import(&self, body: Vec<u8>) -> Result<(), IncomeSystemError>;

    /// Whether the system already holds the row with this internal reference (our payment's or
    /// refund's id): how a post whose answer was lost is found again, since the API has no
    /// idempotency key.
    async fn holds(&self, internal_reference: &str) -> Result<bool, IncomeSystemError>;
}
