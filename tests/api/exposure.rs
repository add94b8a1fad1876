//! What the process shows a caller it does not know: the metrics page's labels stay bounded
//! whatever methods are sent, and health and error answers echo nothing that was sent.

use crate::helpers::{Backend, TestApp};

/// A flood of methods outside the route table: each counts as `other`, none reaches `/metrics`
/// as written (one of them holds a card number), and the page does not grow with them.
#[tokio::test]
async fn odd_methods_are_counted_as_other_and_metrics_stay_flat() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let pan = crate::helpers::fresh_test_pan();
    let send = |method: String| {
        let request = app.client.request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            app.url("/healthz"),
        );
        async move { request.send().await.unwrap().status() }
    };
    let page = || app.metrics_page();
    send(format!("X{pan}")).await;
    for i in 0..50 {
        send(format!("M{i}")).await;
    }
    // The page's own request adds its series once; after that, only counts change.
    page().await;
    let before = page().await.len();
    for i in 50..1_050 {
        send(format!("METHOD{i}")).await;
    }
    let text = page().await;
    assert!(!counterfoil::domain::card_guard::contains_card_number(
        &text
    ));
    assert!(!text.contains(&pan[..13]), "the number is not a label");
    assert!(
        text.contains("method=\"other\""),
        "odd methods are counted as other"
    );
    for line in text.lines().filter(|l| l.contains("method=\"")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"].contains(&method),
            "{line}"
        );
    }
    // A thousand new methods add no series: the page grows only by digits in its counts.
    assert!(text.len() < before + 200, "{before} -> {}", text.len());
}

/// Health, readiness and error answers echo nothing a caller sent: not the path, the query, a
/// header or the method.
#[tokio::test]
async fn health_and_error_answers_echo_nothing_the_caller_sent() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let planted = format!("echo{}", uuid::Uuid::new_v4().simple());
    for path in [
        format!("/healthz?{planted}=1"),
        format!("/readyz?x={planted}"),
        format!("/v1/{planted}"),
        format!("/console/{planted}"),
        format!("/{planted}"),
    ] {
        for method in ["GET", "POST", "BREW"] {
            let response = app
                .client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&path),
                )
                .header("X-Planted", planted.as_str())
                .send()
                .await
                .unwrap();
            let headers = format!("{:?}", response.headers());
            let body = response.text().await.unwrap();
            assert!(!body.contains(&planted), "{method} {path}: {body}");
            assert!(!headers.contains(&planted), "{method} {path}: {headers}");
        }
    }
}
