//! The Stripe client's unit tests: signatures, the allow-list and the status mapping.

use super::*;

/// A client that never reaches Stripe, with the webhook secret of Stripe's own test helper.
fn test_client() -> StripeClient {
    StripeClient::new(
        "http://127.0.0.1:9",
        SecretString::from("sk_test_x"),
        vec![SecretString::from("whsec_test_secret")],
        Duration::from_secs(3600),
        Duration::from_secs(1),
        Duration::from_secs(1),
    )
    .unwrap()
}

/// The header stripe-python 16.1.0's `generate_signature_header` produces for this payload,
/// secret and time (from the reference notes): ours must be the same, byte for byte.
/// Our verifier accepts the header Stripe's own test helper made, at its time, and refuses it
/// five minutes and a second later.
#[test]
fn stripes_header_verifies() {
    let body = r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1","object":"checkout.session"}}}"#;
    let header = "t=1700000000,v1=4a2a3f39402d4bd02442ede6e477b3cbea42955b23b6d2cdab72e5a256f346f1"
        .to_owned();
    let client = test_client();
    let lookup = move |name: &str| (name == SIGNATURE_HEADER).then(|| header.clone());
    let at = |t: i64| DateTime::from_timestamp(t, 0).unwrap();
    assert_eq!(
        client.verify_webhook(&lookup, body.as_bytes(), at(1_700_000_000)),
        Ok(())
    );
    assert_eq!(
        client.verify_webhook(&lookup, body.as_bytes(), at(1_700_000_300)),
        Ok(())
    );
    assert_eq!(
        client.verify_webhook(&lookup, body.as_bytes(), at(1_700_000_301)),
        Err(WebhookRejection::StaleTimestamp)
    );
    assert_eq!(
        client.verify_webhook(&lookup, &body.as_bytes()[1..], at(1_700_000_000)),
        Err(WebhookRejection::BadSignature)
    );
    let event = client.parse_webhook(body.as_bytes()).unwrap();
    assert_eq!(
        (
            event.message_id.as_str(),
            event.provider_payment_id.as_str()
        ),
        ("evt_test_1", "cs_test_1")
    );
}

#[test]
fn our_signature_is_stripes() {
    let body = r#"{"id":"evt_test_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1","object":"checkout.session"}}}"#;
    assert_eq!(
        sign_webhook("whsec_test_secret", 1_700_000_000, body.as_bytes()),
        "t=1700000000,v1=4a2a3f39402d4bd02442ede6e477b3cbea42955b23b6d2cdab72e5a256f346f1"
    );
}

/// Work before authentication is bounded: a header of 10,000 signatures is refused without a
/// single HMAC, and one within the caps costs one HMAC per secret however many it carries.
#[test]
fn a_flood_of_signatures_costs_no_more_than_one_hmac() {
    let body = br#"{"id":"evt_flood","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_flood","object":"checkout.session"}}}"#;
    let client = test_client();
    let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let verify = |header: String| {
        HMACS.with(|n| n.set(0));
        let lookup = move |name: &str| (name == SIGNATURE_HEADER).then(|| header.clone());
        let result = client.verify_webhook(&lookup, body, now);
        (result, HMACS.with(|n| n.get()))
    };
    let wrong = format!("v1={}", "ab".repeat(32));
    let flood = format!("t=1700000000,{}", vec![wrong.as_str(); 10_000].join(","));
    assert_eq!(verify(flood), (Err(WebhookRejection::BadSignature), 0));
    let short_flood = format!("t=1700000000,{}", vec!["v1=0"; 10_000].join(","));
    assert_eq!(
        verify(short_flood),
        (Err(WebhookRejection::BadSignature), 0)
    );

    let right = sign_webhook("whsec_test_secret", 1_700_000_000, body);
    let right_sig = right.split_once(",v1=").unwrap().1;
    let crowded = format!("t=1700000000,{wrong},{wrong},{wrong},{wrong},{wrong},v1={right_sig}");
    assert_eq!(verify(crowded), (Ok(()), 1));
    let too_many = format!(
        "t=1700000000,{},v1={right_sig}",
        [wrong.as_str(); 7].join(",")
    );
    assert_eq!(verify(too_many).0, Err(WebhookRejection::BadSignature));
}
