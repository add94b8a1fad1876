//! The console's own pages for what went wrong, in its layout (header, the person, navigation),
//! never the API's JSON or plain text; and a test instance that says TEST on every page.

use reqwest::StatusCode;

use crate::console::{page, paid, post_form, signed_in};
use crate::helpers::TestApp;

/// The page's "Next page" link, as a path to follow.
fn next_page_link(html: &str) -> String {
    html.split("rel=\"next\"")
        .next()
        .and_then(|head| head.rsplit("href=\"").next())
        .map(|href| {
            href.split('"')
                .next()
                .unwrap()
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
        })
        .expect("a next page link")
}

each_backend! {
    async fn a_search_pages_fifty_at_a_time_newest_first_with_no_row_twice(backend) {
        let app = TestApp::spawn(backend).await;
        for n in 0..53 {
            let body = crate::helpers::payment_body(&format!("CRM-PAGE-{n:02}"));
            assert_eq!(app.create_payment(&format!("page-{n}"), &body).await.status(), 201);
        }
        let viewer = signed_in(&app, "test-viewer").await;
        let rows = |html: &str| -> Vec<String> {
            html.split("CRM-PAGE-").skip(1).map(|r| r[..2].to_owned()).collect()
        };
        let (_, first) = page(&viewer, &app, "/console/payments?service=demo").await;
        let next = next_page_link(&first);
        assert!(next.starts_with("/console/payments?service=demo&cursor="), "{next}");
        let (_, second) = page(&viewer, &app, &next).await;
        let (one, two) = (rows(&first), rows(&second));
        assert_eq!((one.len(), two.len()), (50, 3));
        assert_eq!(one[0], "52", "newest first");
        let mut all: Vec<_> = one.iter().chain(two.iter()).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 53, "every payment once");
        assert!(!second.contains("rel=\"next\""), "the last page has no next");
    }

    async fn a_days_takings_page_a_hundred_lines_at_a_time_in_the_order_they_counted(backend) {
        let app = TestApp::spawn(backend).await;
        for n in 0..103 {
            let body = crate::helpers::payment_body(&format!("CRM-DAY-{n:03}"));
            assert_eq!(app.create_payment(&format!("day-{n}"), &body).await.status(), 201);
        }
        app.execute("UPDATE payments SET status = 'succeeded', \
                     finished_at = '2026-06-10T09:00:00.000000Z'").await;
        let finance = signed_in(&app, "test-viewer").await;
        let rows = |html: &str| -> Vec<String> {
            html.split("CRM-DAY-").skip(1).map(|r| r[..3].to_owned()).collect()
        };
        let (status, first) = page(&finance, &app, "/console/takings/2026-06-10?service=demo").await;
        assert_eq!(status, 200);
        let next = next_page_link(&first);
        assert!(next.starts_with("/console/takings/2026-06-10?service=demo&cursor="), "{next}");
        let (_, second) = page(&finance, &app, &next).await;
        let (one, two) = (rows(&first), rows(&second));
        assert_eq!((one.len(), two.len()), (100, 3));
        let mut all: Vec<_> = one.iter().chain(two.iter()).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 103, "every line once");
        assert!(!second.contains("rel=\"next\""), "the last page has no next");
    }

    async fn errors_are_console_pages_with_the_layout(backend) {
        let app = TestApp::spawn(backend).await;
        let payment = paid(&app, "CRM-PAGES-1").await;
        let browser = signed_in(&app, "test-supervisor").await;
        let laid_out = |html: &str| html.contains("Sam Supervisor") && html.contains("aria-label=\"Main\"");

        // An address the console does not have: its own 404 page, not the API's JSON.
        let missing = browser.get(app.url("/console/no-such-page")).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let html = missing.text().await.unwrap();
        assert!(html.contains("Page not found") && laid_out(&html), "{html}");

        // A role that does not allow the page: 403 in the layout.
        let viewer = signed_in(&app, "test-viewer").await;
        let (status, html) = page(&viewer, &app, "/console/approvals").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(html.contains("You cannot do that") && html.contains("Vera Viewer"));

        // A form without its token: the "expired" page, not 400 plain text.
        let bare = post_form(&browser, &app, &format!("/console/payments/{payment}/refunds"), &[("amount", "1")]).await;
        assert_eq!(bare.status(), StatusCode::FORBIDDEN);
        let html = bare.text().await.unwrap();
        assert!(html.contains("This form has expired") && laid_out(&html), "{html}");

        // A ledger period that cannot be read: 422 and a page that says so, not 502.
        let (status, html) = page(&browser, &app, "/console/takings/ledger.csv?from=2026-13-40").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(html.contains("Check what you asked for") && laid_out(&html));

        // An address whose query cannot be read.
        let (status, html) = page(&browser, &app, "/console/payments/{payment}?done=%ZZ").await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{status}");
        assert!(laid_out(&html));
    }

    async fn the_accessibility_statement_follows_the_model_and_says_what_is_not_yet_right(backend) {
        let app = TestApp::spawn(backend).await;
        let (status, html) = page(&crate::console::browser(), &app, "/console/accessibility").await;
        assert_eq!(status, 200, "anyone may read it, signed in or not");
        for needed in [
            "partially compliant",
            "Non-accessible content",
            "2.2.1",
            "This statement was prepared on 6 December 2026",
            "last tested on",
            "axe-core",
            "320 CSS pixels",
            "3:1",
            "do not include screen readers",
            "Enforcement procedure",
        ] {
            assert!(html.contains(needed), "the statement says: {needed}");
        }
        assert!(!html.contains("fully compliant"), "no claim of full compliance on automated tests alone");
    }

    async fn a_test_instance_says_test_on_every_page(backend) {
        let app = TestApp::spawn(backend).await;
        let browser = signed_in(&app, "test-viewer").await;
        let stranger = crate::console::browser();
        let (_, html) = page(&stranger, &app, "/console/sign-in").await;
        assert!(html.contains(">TEST<"), "the sign-in page too");
        for path in ["/console", "/console/payments", "/console/accessibility", "/console/nowhere"] {
            let (_, html) = page(&browser, &app, path).await;
            assert!(html.contains(">TEST<") && html.contains("No real money moves"), "{path}");
            assert!(html.contains("<title>TEST – "), "{path}: the title says so too");
        }
    }
}
