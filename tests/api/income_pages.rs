//! The income pages over HTTP as a browser uses them: a refused batch posted again by a person (a
//! viewer may look, never act), a download that is byte for byte the batch and says its digest,
//! a batch set against its ledger day, a month locked once it is over, and payouts flagged.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;
use sha2::Digest;

use crate::console::{hidden, location, page, post_form, signed_in};
use crate::income::{during, Week};

each_backend! {
    async fn a_refused_batch_is_posted_again_by_a_person_and_reads_against_its_day(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        week.ims(json!({"funds": ["PRM01"]})).await;
        let paid = week.paid("demo", "PG-1", 2500, during(d0, 0)).await;
        let (batch, round) = week.close(d0).await;
        assert_eq!(round.failed, 1);
        // Learnt after the batch was built, dated on its day: the next batch will hold it.
        let late = week.paid("demo", "PG-LATE", 700, during(d0, 30)).await;
        let app = &week.app;

        let vera = signed_in(app, "test-viewer").await;
        let (status, list) = page(&vera, app, "/console/income").await;
        assert_eq!(status, StatusCode::OK);
        assert!(list.contains(&batch.reference) && list.contains("Refused: needs a person"), "{list}");
        let path = format!("/console/income/batches/{}", batch.id);
        let (_, viewed) = page(&vera, app, &path).await;
        assert!(!viewed.contains("Post again"), "a viewer is offered no act");
        let csrf = hidden(&viewed, "csrf_token");
        let refused = post_form(&vera, app, &format!("{path}/post-again"), &[("csrf_token", &csrf)]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        let fiona = signed_in(app, "test-refunder").await;
        // It waits under Needs attention, and the dashboard counts it, until it is dealt with.
        let (_, queue) = page(&fiona, app, "/console/attention?kind=refused_batch").await;
        assert!(queue.contains("Income batch refused") && queue.contains(&format!("href=\"{path}\"")), "{queue}");
        let (_, dashboard) = page(&fiona, app, "/console").await;
        assert!(dashboard.contains("Income batches the income system refused"), "{dashboard}");
        let (_, shown) = page(&fiona, app, &path).await;
        assert!(shown.contains("The income system said") && shown.contains("DEMO is not a fund"), "{shown}");
        assert!(shown.contains(&late) && shown.contains("Not yet: the next batch built"), "set against its day: {shown}");
        assert!(shown.contains("£32.00"), "the day now holds £25 and £7: {shown}");
        let csrf = hidden(&shown, "csrf_token");
        let again = post_form(&fiona, app, &format!("{path}/post-again"), &[("csrf_token", &csrf)]).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&again), format!("{path}?done=again#main"));
        week.ims(json!({})).await;
        assert_eq!(app.services.income.post_due().await.unwrap().posted, 1);
        let (_, posted) = page(&fiona, app, &path).await;
        assert!(posted.contains("Posted by Counterfoil"), "{posted}");
        let (_, queue) = page(&fiona, app, "/console/attention?kind=refused_batch").await;
        assert!(!queue.contains(&batch.reference), "dealt with: {queue}");
        assert!(posted.contains(&paid));

        // The download is the batch as built, and says what it hashes to.
        let first = fiona.get(app.url(&format!("{path}/document"))).send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let digest = first.headers()["repr-digest"].to_str().unwrap().to_owned();
        let disposition = first.headers()["content-disposition"].to_str().unwrap().to_owned();
        let bytes = first.bytes().await.unwrap();
        let again = fiona.get(app.url(&format!("{path}/document"))).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes, again);
        let sha = sha2::Sha256::digest(&bytes);
        assert_eq!(digest, format!("sha-256=:{}:", base64::engine::general_purpose::STANDARD.encode(sha)));
        assert_eq!(hex::encode(sha), batch.checksum);
        assert!(disposition.contains(&format!("{}.json", batch.reference)), "{disposition}");
    }

    async fn a_month_is_locked_once_it_is_over_and_payouts_are_shown_against_the_batches(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        week.paid("demo", "PM-1", 1500, during(d0, 0)).await;
        week.close(d0).await;
        let app = &week.app;
        let month = counterfoil::domain::income::period_of(d0);
        let fiona = signed_in(app, "test-refunder").await;
        let lock = format!("/console/income/months/{month}/lock");
        let (status, _) = page(&fiona, app, &lock).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "a month that is not over cannot be locked");
        let (_, months) = page(&fiona, app, "/console/income/months").await;
        assert!(months.contains("£15.00") && months.contains("DEMO") && !months.contains(&lock), "{months}");

        // Forty days on (a new sign-in: the last one has long timed out), the month is over.
        week.clock.advance(std::time::Duration::from_secs(40 * 24 * 3600));
        let fiona = signed_in(app, "test-refunder").await;
        let (_, months) = page(&fiona, app, "/console/income/months").await;
        assert!(months.contains(&lock), "{months}");
        let (status, confirm) = page(&fiona, app, &lock).await;
        assert_eq!(status, StatusCode::OK);
        assert!(confirm.contains("£15.00") && confirm.contains("cannot be undone"), "{confirm}");
        let csrf = hidden(&confirm, "csrf_token");
        let locked = post_form(&fiona, app, &lock, &[("csrf_token", &csrf)]).await;
        assert_eq!(location(&locked), "/console/income/months?done=locked#main");
        let (_, months) = page(&fiona, app, "/console/income/months").await;
        assert!(months.contains("Locked by") && !months.contains(&lock), "{months}");
        let trail: serde_json::Value = app.get("/v1/audit", &app.admin_key).await.json().await.unwrap();
        assert!(trail["items"].as_array().unwrap().iter().any(|e| e["action"] == "income.period_locked" && e["subject"] == month.as_str()));

        let (status, payouts) = page(&fiona, app, "/console/payouts").await;
        assert_eq!(status, StatusCode::OK);
        assert!(payouts.contains("No payouts read yet") && payouts.contains("Read payouts now"), "{payouts}");
        let vera = signed_in(app, "test-viewer").await;
        let (_, viewed) = page(&vera, app, "/console/payouts").await;
        assert!(!viewed.contains("Read payouts now"));
    }
}
