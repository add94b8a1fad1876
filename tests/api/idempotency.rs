//! Idempotency-Key: replays, reuse with another body, in-flight conflicts, and a concurrent
//! double submit that makes exactly one provider payment.

use serde_json::{json, Value};

use crate::helpers::payment_body;

both_stores! {
    async fn the_same_key_and_body_replay_the_same_answer(app) {
        let body = payment_body("CRM-2001");
        let first = app.create_payment("same-key", &body).await;
        assert_eq!(first.status(), 201);
        let first_body = first.text().await.unwrap();
        // Key order and spacing do not make it a different request.
        let reordered: Value = serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
        let second = app.create_payment("same-key", &reordered).await;
        assert_eq!(second.status(), 201);
        assert_eq!(second.headers()["idempotent-replayed"], "true");
        assert_eq!(second.text().await.unwrap(), first_body);
        assert_eq!(app.simulator_payments().await.len(), 1);
        assert_eq!(app.count_rows("payments").await, 1);
    }

    async fn the_same_key_with_another_body_is_refused(app) {
        app.create_payment("reused", &payment_body("CRM-2002")).await;
        let mut other = payment_body("CRM-2002");
        other["amount"] = json!(2600);
        let response = app.create_payment("reused", &other).await;
        assert_eq!(response.status(), 422);
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "idempotency_key_reused");
        assert_eq!(app.count_rows("payments").await, 1);
    }

    async fn a_key_is_the_callers_own(app) {
        // Two different CRM keys may use the same Idempotency-Key for different payments.
        let other_key = app.services.keys.create(&counterfoil::domain::Actor::CommandLine("test"), counterfoil::domain::api_key::Role::Crm, "second portal").await.unwrap().1;
        assert_eq!(app.create_payment("shared", &payment_body("CRM-2003")).await.status(), 201);
        let response = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(other_key)
            .header("Idempotency-Key", "shared")
            .json(&payment_body("CRM-2004"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        assert_eq!(app.count_rows("payments").await, 2);
    }

    async fn a_request_still_in_flight_gets_409(app) {
        // The provider takes a second to answer the first create.
        app.simulator_faults(json!({"create_delay_ms": 1000, "create_delays": 1})).await;
        let body = payment_body("CRM-2005");
        let (first, second) = tokio::join!(
            app.create_payment("in-flight", &body),
            async {
                // Sent once the first holds the key (its payment row is written with the claim),
                // not after a guessed head start a busy machine can outlast.
                while app.count_rows("payments").await == 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                app.create_payment("in-flight", &body).await
            }
        );
        assert_eq!(first.status(), 201);
        assert_eq!(second.status(), 409);
        let problem: Value = second.json().await.unwrap();
        assert_eq!(problem["code"], "idempotency_conflict");
        // Once done, the same request replays the first answer.
        let third = app.create_payment("in-flight", &body).await;
        assert_eq!(third.status(), 201);
        assert_eq!(app.simulator_payments().await.len(), 1);
    }

    async fn a_concurrent_double_submit_makes_one_provider_payment(app) {
        let body = payment_body("CRM-DOUBLE");
        let attempts = (0..12).map(|_| app.create_payment("double-submit", &body));
        let responses = futures_util::future::join_all(attempts).await;
        let mut created_bodies = Vec::new();
        for response in responses {
            match response.status().as_u16() {
                201 => created_bodies.push(response.json::<Value>().await.unwrap()),
                409 => {}
                other => panic!("unexpected status {other}"),
            }
        }
        assert!(!created_bodies.is_empty());
        let first_id = &created_bodies[0]["id"];
        assert!(created_bodies.iter().all(|b| &b["id"] == first_id), "every 201 is the same payment");
        assert_eq!(app.simulator_payments().await.len(), 1, "exactly one provider payment");
        assert_eq!(app.count_rows("payments").await, 1);
    }

    async fn a_create_without_a_key_or_with_a_bad_one_is_refused_before_anything_is_stored(app) {
        let response = app
            .client
            .post(app.url("/v1/payments"))
            .bearer_auth(&app.crm_key)
            .json(&payment_body("CRM-2006"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "idempotency_key_missing");
        for bad in ["has space", "semi;colon", &"k".repeat(256)] {
            let response = app.create_payment(bad, &payment_body("CRM-2006")).await;
            assert_eq!(response.status(), 422, "{bad}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
        }
        assert_eq!(app.count_rows("payments").await, 0);
        assert_eq!(app.count_rows("idempotency_keys").await, 0);
    }
}
