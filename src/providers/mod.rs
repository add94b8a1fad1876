//! Payment providers: one trait every provider implements, mapping its shapes into one internal
//! model, and the registry that finds an account's provider.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{PaymentId, ProviderEvent, ProviderKind};

pub mod govuk_pay;
pub mod income_system;
pub mod instrumented;
pub mod layered;
pub mod redirect_guard;
pub mod stripe;

/// What we ask a provider to create: a hosted payment page for one amount.
#[derive(Debug, Clone)]
pub struct CreateSession<'a> {
    pub payment_id: &'a PaymentId,
    pub reference: &'a str,
    pub description: &'a str,
    pub amount: i64,
    pub return_url: &'a str,
    pub email: Option<&'a str>,
    pub metadata: &'a BTreeMap<String, String>,
}

pub use crate::domain::provider_view::{
    ProviderPayment, ProviderPayout, ProviderPayoutItem, ProviderRefund, ProviderRefundRecord,
};

/// One page of a provider search; `next` is the cursor of the page after it, if any (a page
/// number for GOV.UK Pay, the last object's id for Stripe).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Default for SearchPage<T> {
    /// Nothing found, and no page after.
    fn default() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused the request: it certainly did nothing.
    #[error("the provider refused the request (HTTP {status}, code {code:?})")]
    Rejected { status: u16, code: Option<String> },
    #[error("the provider has no such payment")]
    NotFound,
    /// The request is valid but the payment is in the wrong state (e.g. cannot be cancelled).
    #[error("the provider refused the change in the payment's current state (code {code:?})")]
    Conflict { code: Option<String> },
    /// No connection could be made: the request was certainly not sent.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// A timeout, a 5xx or a rate limit: for a write, it may or may not have taken effect.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider answered with something we cannot read.
    #[error("unexpected answer from the provider: {0}")]
    InvalidResponse(String),
    /// The request held a card number, so it was never sent.
    #[error("the request held a card number and was not sent")]
    CardData,
}

/// Sorts failures to send into "never sent" and "may have happened".
pub(crate) fn transport_error(error: crate::outbound::OutboundError) -> ProviderError {
    let error = match error {
        crate::outbound::OutboundError::CardData => return ProviderError::CardData,
        crate::outbound::OutboundError::Transport(error) => error,
    };
    if error.is_connect() {
        ProviderError::Unreachable(error.without_url().to_string())
    } else {
        ProviderError::Unavailable(error.without_url().to_string())
    }
}

/// Finds a request header by name (case-insensitive), so providers need no HTTP framework types.
pub type HeaderLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

pub use crate::domain::event::WebhookRejection;

/// Reads a provider's message into `T`. A failure names the field (by the names the provider's
/// document gives; any other key as `?`), never its value: the message may carry card details.
pub(crate) fn read_message<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, WebhookRejection> {
    use serde_path_to_error::Segment;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .map(|segment| match segment {
                Segment::Seq { index } => index.to_string(),
                Segment::Map { key }
                    if (1..=40).contains(&key.len())
                        && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') =>
                {
                    key.clone()
                }
                _ => "?".to_owned(),
            })
            .collect();
        let what = match e.inner().classify() {
            serde_json::error::Category::Data => "has the wrong type or value",
            _ => "is not valid JSON",
        };
        WebhookRejection::Malformed(if path.is_empty() {
            format!("the message {what}")
        } else {
            format!("field `{}` {what}", path.join("."))
        })
    })
}

/// One provider account's API.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    fn kind(&self) -> ProviderKind;

    /// Creates a hosted payment. Never retried on an ambiguous failure.
    async fn create_payment(
        &self,
        request: &CreateSession<'_>,
    ) -> Result<ProviderPayment, ProviderError>;

    /// Reads a payment's current state (strongly consistent at the provider).
    async fn get_payment(
        &self,
        provider_payment_id: &str,
    ) -> Result<ProviderPayment, ProviderError>;

    /// Cancels a payment the citizen has not completed.
    async fn cancel_payment(&self, provider_payment_id: &str) -> Result<(), ProviderError>;

    /// Asks for a refund of `amount`. `amount_available` is what we believe is still refundable;
    /// GOV.UK Pay refuses the refund if it disagrees (its guard against double refunds).
    /// `refund_id` is ours: Stripe takes it as the idempotency key, so a retry cannot refund twice.
    async fn refund(
        &self,
        provider_payment_id: &str,
        amount: i64,
        amount_available: i64,
        refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError>;

    /// Reads a refund's current state.
    async fn get_refund(
        &self,
        provider_payment_id: &str,
        provider_refund_id: &str,
    ) -> Result<ProviderRefund, ProviderError>;

    /// One page of the payments the provider holds, created in [from, to): the first when
    /// `cursor` is None, else the one the previous page's `next` names.
    async fn search_payments(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayment>, ProviderError>;

    /// One page of the refunds the provider holds, created in [from, to) (cursor as above).
    async fn search_refunds(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError>;

    /// Checks a webhook's signature over the exact bytes received, before anything is parsed,
    /// in constant time, against each configured secret (two during a rotation), and, where the
    /// provider signs a timestamp, that it is within its tolerance of `now`.
    fn verify_webhook(
        &self,
        header: HeaderLookup<'_>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookRejection>;

    /// Reads a verified webhook body through the allow-list into the provider-neutral event.
    fn parse_webhook(&self, body: &[u8]) -> Result<ProviderEvent, WebhookRejection>;

    /// One page of the payouts the provider made to the council's bank, created on or after
    /// `since`, newest first (cursor as for searches). A provider with no payouts API: none.
    async fn search_payouts(
        &self,
        _since: DateTime<Utc>,
        _cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayout>, ProviderError> {
        Ok(SearchPage::default())
    }

    /// One page of what a payout holds (cursor as for searches).
    async fn payout_items(
        &self,
        _payout_id: &str,
        _cursor: Option<&str>,
    ) -> Result<SearchPage<ProviderPayoutItem>, ProviderError> {
        Ok(SearchPage::default())
    }

    /// Looks for a payment we asked for but whose create answer was lost, by our reference and id.
    async fn find_payment(
        &self,
        reference: &str,
        payment_id: &PaymentId,
        created_from: DateTime<Utc>,
    ) -> Result<Option<ProviderPayment>, ProviderError>;
}

/// The configured provider accounts by name.
#[derive(Clone, Default)]
pub struct ProviderRegistry {
    accounts: HashMap<String, Arc<dyn PaymentProvider>>,
}

impl ProviderRegistry {
    pub fn insert(&mut self, account: impl Into<String>, provider: Arc<dyn PaymentProvider>) {
        self.accounts.insert(account.into(), provider);
    }

    /// The provider of `account`; an error, never a panic, for an account configuration no
    /// longer has (an old payment's account, removed since).
    pub fn get(&self, account: &str) -> Result<Arc<dyn PaymentProvider>, AccountNotConfigured> {
        self.accounts
            .get(account)
            .cloned()
            .ok_or_else(|| AccountNotConfigured(account.to_owned()))
    }

    /// The configured accounts' names, in order.
    pub fn accounts(&self) -> Vec<String> {
        let mut names: Vec<String> = self.accounts.keys().cloned().collect();
        names.sort();
        names
    }
}

/// A provider account that the configuration does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no provider account named {0} is configured")]
pub struct AccountNotConfigured(pub String);

/// The metadata key under which our own payment id travels with a provider payment.
pub const COUNTERFOIL_ID_KEY: &str = "counterfoil_payment_id";
