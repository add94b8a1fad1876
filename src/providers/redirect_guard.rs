//! A provider wrapped with the account's redirect-host allow-list: a payment page (`next_url`)
//! on any other host, or not on https, is refused before the CRM can send a citizen there, so a
//! compromised or misconfigured provider answer cannot redirect payers elsewhere.

use std::sync::Arc;

use super::layered::{Layer, Layered};
use super::{PaymentProvider, ProviderError, ProviderPayment};

pub struct RedirectGuard {
    account: String,
    hosts: Vec<String>,
    /// Plain http allowed (the built-in simulators, outside production).
    allow_http: bool,
}

impl RedirectGuard {
    pub fn wrap(
        inner: Arc<dyn PaymentProvider>,
        account: &str,
        hosts: Vec<String>,
        allow_http: bool,
    ) -> Arc<dyn PaymentProvider> {
        Layered::wrap(
            inner,
            Self {
                account: account.to_owned(),
                hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
                allow_http,
            },
        )
    }

    /// Whether `next_url` is on an allowed host, over an allowed scheme.
    pub fn allows(&self, next_url: &str) -> bool {
        let Ok(url) = url::Url::parse(next_url) else {
            return false;
        };
        let scheme_ok = url.scheme() == "https" || (self.allow_http && url.scheme() == "http");
        let host_ok = url
            .host_str()
            .is_some_and(|host| self.hosts.iter().any(|allowed| allowed == host));
        scheme_ok && host_ok && url.username().is_empty() && url.password().is_none()
    }

    fn check(&self, payment: ProviderPayment) -> Result<ProviderPayment, ProviderError> {
        match payment.next_url.as_deref() {
            Some(next) if !self.allows(next) => {
                let host = url::Url::parse(next)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "(unreadable)".into());
                tracing::error!(
                    account = %self.account,
                    host = %host,
                    provider_payment_id = %payment.provider_payment_id,
                    "the provider's payment page is not on an allowed host: refused"
                );
                Err(ProviderError::InvalidResponse(format!(
                    "payment page host {host} is not allowed for this account"
                )))
            }
            _ => Ok(payment),
        }
    }
}

impl Layer for RedirectGuard {
    fn payment(&self, payment: ProviderPayment) -> Result<ProviderPayment, ProviderError> {
        self.check(payment)
    }

    /// Searches feed reconciliation, which heals lost creates from them: a payment on a host
    /// not allowed keeps its status but loses its page, so no citizen is sent there.
    fn searched(&self, payment: &mut ProviderPayment) {
        if let Err(refused) = self.check(payment.clone()) {
            tracing::warn!(error = %refused, "payment page dropped from a search result");
            payment.next_url = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::domain::{PaymentId, ProviderEvent, ProviderKind};
    use crate::providers::{
        CreateSession, HeaderLookup, ProviderRefund, ProviderRefundRecord, SearchPage,
        WebhookRejection,
    };

    /// A provider whose every payment has its page at `next_url`.
    struct PagesAt(&'static str);

    impl PagesAt {
        fn payment(&self) -> ProviderPayment {
            ProviderPayment {
                provider_payment_id: "p1".into(),
                status: crate::domain::PaymentStatus::Created,
                failure_code: None,
                next_url: Some(self.0.into()),
                amount: 100,
                reference: "CRM-1".into(),
                counterfoil_id: None,
                created_at: None,
                finished_at: None,
                refund_available: None,
            }
        }
    }

    #[async_trait]
    impl PaymentProvider for PagesAt {
        fn kind(&self) -> ProviderKind {
            ProviderKind::GovukPay
        }
        async fn create_payment(
            &self,
            _: &CreateSession<'_>,
        ) -> Result<ProviderPayment, ProviderError> {
            Ok(self.payment())
        }
        async fn get_payment(&self, _: &str) -> Result<ProviderPayment, ProviderError> {
            Ok(self.payment())
        }
        async fn cancel_payment(&self, _: &str) -> Result<(), ProviderError> {
            unimplemented!()
        }
        async fn refund(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: &str,
        ) -> Result<ProviderRefund, ProviderError> {
            unimplemented!()
        }
        async fn get_refund(&self, _: &str, _: &str) -> Result<ProviderRefund, ProviderError> {
            unimplemented!()
        }
        async fn search_payments(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: Option<&str>,
        ) -> Result<SearchPage<ProviderPayment>, ProviderError> {
            Ok(SearchPage {
                items: vec![self.payment()],
                next: None,
            })
        }
        async fn search_refunds(
            &self,
            _: DateTime<Utc>,
            _: DateTime<Utc>,
            _: Option<&str>,
        ) -> Result<SearchPage<ProviderRefundRecord>, ProviderError> {
            unimplemented!()
        }
        fn verify_webhook(
            &self,
            _: HeaderLookup<'_>,
            _: &[u8],
            _: DateTime<Utc>,
        ) -> Result<(), WebhookRejection> {
            unimplemented!()
        }
        fn parse_webhook(&self, _: &[u8]) -> Result<ProviderEvent, WebhookRejection> {
            unimplemented!()
        }
        async fn find_payment(
            &self,
            _: &str,
            _: &PaymentId,
            _: DateTime<Utc>,
        ) -> Result<Option<ProviderPayment>, ProviderError> {
            Ok(Some(self.payment()))
        }
    }

    /// Every path that yields a payment page (create, refresh, the search for a lost create, the
    /// search reconciliation heals from) passes the allow-list.
    #[tokio::test]
    async fn every_path_to_a_payment_page_passes_the_allow_list() {
        let guarded = |page: &'static str| {
            RedirectGuard::wrap(
                Arc::new(PagesAt(page)),
                "a",
                vec!["card.payments.service.gov.uk".into()],
                false,
            )
        };
        let id = PaymentId::new();
        let metadata = Default::default();
        let session = CreateSession {
            payment_id: &id,
            reference: "CRM-1",
            description: "d",
            amount: 100,
            return_url: "https://council.example.gov.uk/",
            email: None,
            metadata: &metadata,
        };
        let (now, evil, good) = (
            Utc::now(),
            guarded("https://evil.example/pay"),
            guarded("https://card.payments.service.gov.uk/secure/1"),
        );
        assert!(evil.create_payment(&session).await.is_err());
        assert!(evil.get_payment("p1").await.is_err());
        assert!(evil.find_payment("CRM-1", &id, now).await.is_err());
        let searched = evil.search_payments(now, now, None).await.unwrap();
        assert_eq!(
            searched.items[0].next_url, None,
            "the status is kept, the page is not"
        );
        assert_eq!(searched.items[0].provider_payment_id, "p1");

        assert!(good
            .create_payment(&session)
            .await
            .unwrap()
            .next_url
            .is_some());
        assert!(good.get_payment("p1").await.unwrap().next_url.is_some());
        assert!(good
            .find_payment("CRM-1", &id, now)
            .await
            .unwrap()
            .unwrap()
            .next_url
            .is_some());
        assert!(good.search_payments(now, now, None).await.unwrap().items[0]
            .next_url
            .is_some());
    }

    fn guard(allow_http: bool) -> RedirectGuard {
        RedirectGuard {
            account: "a".into(),
            hosts: vec!["checkout.stripe.com".into()],
            allow_http,
        }
    }

    #[test]
    fn only_the_allowed_hosts_over_https() {
        let g = guard(false);
        assert!(g.allows("https://checkout.stripe.com/c/pay/cs_test_1"));
        assert!(g.allows("https://CHECKOUT.stripe.com/c/pay/cs_test_1"));
        for refused in [
            "http://checkout.stripe.com/c/pay/cs_test_1",
            "https://checkout.stripe.com.evil.example/c/pay",
            "https://evil.example/checkout.stripe.com",
            "https://checkout.stripe.com@evil.example/",
            "https://user@checkout.stripe.com/",
            "javascript:alert(1)",
            "not a url",
        ] {
            assert!(!g.allows(refused), "{refused}");
        }
        assert!(guard(true).allows("http://checkout.stripe.com/c/pay/cs_test_1"));
    }
}
