//! The rules a batch keeps: refused by the income system, it waits for a person and nothing is
//! lost; built, it is never rewritten; built by two servers at once, it is built once; written
//! as a file, it reads back the same and a person says when it was imported; a locked month
//! sends a late day to the next open one.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use counterfoil::config::IncomeTarget;
use counterfoil::domain::income::document::{AmountFormat, Field, FileColumn, FileLayout};
use counterfoil::store::BatchStatus;

use crate::income::{during, Week};

/// The audit trail's entries for `action`.
async fn audited(week: &Week, action: &str) -> Vec<Value> {
    let trail: Value = week
        .app
        .get("/v1/audit", &week.app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

each_backend! {
    async fn a_refused_batch_waits_for_a_person_and_is_posted_once_when_put_right(backend) {
        let week = Week::begin(backend).await;
        let (d0, d1) = (week.day(0), week.day(1));
        // The council's LocalGov IMS does not know the permits fund yet.
        week.ims(json!({"funds": ["DEMO"]})).await;
        let permit = week.paid("permits", "RF-1", 1200, during(d0, 0)).await;
        let (refused, round) = week.close(d0).await;
        assert_eq!((round.posted, round.failed), (0, 1), "{round:?}");
        let (read, _) = week.app.services.income.batch(&refused.id).await.unwrap().unwrap();
        assert_eq!(read.status, BatchStatus::Failed);
        assert!(read.last_error.as_deref().unwrap().contains("PRM01"), "{:?}", read.last_error);
        assert!(week.transactions().await.is_empty(), "nothing taken");
        // Left alone, it is not tried again; the next day posts.
        let demo = week.paid("demo", "RF-2", 800, during(d1, 0)).await;
        let (next, round) = week.close(d1).await;
        assert_eq!(round.posted, 1, "{round:?}");
        assert_eq!(week.app.services.income.batch(&next.id).await.unwrap().unwrap().0.status, BatchStatus::Posted);
        assert_eq!(week.app.services.income.batch(&refused.id).await.unwrap().unwrap().0.status, BatchStatus::Failed);

        // The fund is added; a person asks for it to go again, and it goes once.
        week.ims(json!({})).await;
        let income = &week.app.services.income;
        assert!(!income.post_again(&next.id, "staff:fay", "Fay Finance").await.unwrap(), "only a refused batch");
        assert!(income.post_again(&refused.id, "staff:fay", "Fay Finance").await.unwrap());
        let round = income.post_due().await.unwrap();
        assert_eq!(round.posted, 1, "{round:?}");
        let held: BTreeSet<String> = week.transactions().await.iter()
            .map(|t| t["InternalReference"].as_str().unwrap().to_owned()).collect();
        assert_eq!(held, BTreeSet::from([permit, demo]));
        assert_eq!(week.transactions().await.len(), 2);
        let audit = audited(&week, "income.batch_post_again").await;
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0]["actor"]["label"], "Fay Finance");
        assert_eq!(audit[0]["subject"], refused.reference.as_str());
    }

    async fn a_built_batch_is_never_rewritten(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        week.paid("demo", "RW-1", 1500, during(d0, 0)).await;
        let (batch, _) = week.close(d0).await;
        let id = &batch.id;
        for change in [
            "UPDATE income_batch_lines SET gross = 1".to_owned(),
            "DELETE FROM income_batch_lines".to_owned(),
            format!("UPDATE income_batches SET control_total = 1 WHERE id = '{id}'"),
            format!("UPDATE income_batches SET day = '2000-01-01' WHERE id = '{id}'"),
            format!("UPDATE income_batches SET status = 'ready' WHERE id = '{id}'"),
            format!("DELETE FROM income_batches WHERE id = '{id}'"),
        ] {
            assert!(week.app.try_execute(&change).await.is_err(), "{change} was allowed");
        }
        // Its posting state alone may move (here: to the same state, which is allowed).
        week.app.execute(&format!("UPDATE income_batches SET last_error = NULL WHERE id = '{id}'")).await;
        let (_, document) = week.app.services.income.document(id).await.unwrap().unwrap();
        assert_eq!(counterfoil::domain::income::document::checksum(&document), batch.checksum);
    }

    async fn two_servers_building_at_once_build_each_day_once(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        for n in 0..5 {
            week.paid("demo", &format!("TS-{n}"), 100 + n, during(d0, n)).await;
        }
        week.clock.set(crate::income::after(week.day(2)));
        let income = &week.app.services.income;
        let (one, two) = tokio::join!(income.build_due(), income.build_due());
        let built: Vec<_> = one.unwrap().built.into_iter().chain(two.unwrap().built).filter(|b| b.account == "sandbox").collect();
        let days: BTreeSet<_> = built.iter().map(|b| b.day).collect();
        assert_eq!(built.len(), 3, "{built:?}");
        assert_eq!(days.len(), 3);
        assert_eq!(built.iter().map(|b| b.row_count).sum::<i64>(), 5);
        assert_eq!(week.app.count_rows("income_batch_lines").await, 5);
    }
}

/// An ICON-style file: the fund, the account, the amount in pence, the London date.
fn icon_style() -> FileLayout {
    let column = |title: &str, field: Field| FileColumn {
        title: title.into(),
        field: Some(field),
        text: None,
    };
    FileLayout {
        columns: vec![
            column("Fund", Field::FundCode),
            column("Reference", Field::AccountReference),
            column("Amount", Field::Amount),
            column("VAT", Field::VatCode),
            column("Date", Field::TransactionDate),
            FileColumn {
                title: "Source".into(),
                field: None,
                text: Some("WEB".into()),
            },
        ],
        header: true,
        delimiter: ',',
        date_format: "%d/%m/%Y".into(),
        amount_format: AmountFormat::Pence,
    }
}

each_backend! {
    async fn a_file_batch_reads_back_the_same_and_a_person_says_it_was_imported(backend) {
        let week = Week::begin_with(backend, |s| {
            s.income.target = IncomeTarget::File;
            s.income.file = Some(icon_style());
        })
        .await;
        let d0 = week.day(0);
        let paid = week.paid("permits", "FILE-1", 1200, during(d0, 0)).await;
        week.refunded(&paid, 200, during(d0, 5)).await;
        let (batch, round) = week.close(d0).await;
        assert_eq!(round, Default::default(), "a file is not pushed");
        assert!(!batch.pushed);
        assert_eq!((batch.row_count, batch.control_total), (2, 1000));
        let income = &week.app.services.income;
        let (_, first) = income.document(&batch.id).await.unwrap().unwrap();
        let (_, second) = income.document(&batch.id).await.unwrap().unwrap();
        assert_eq!(first, second);
        let day = d0.format("%d/%m/%Y");
        assert_eq!(
            String::from_utf8(first).unwrap(),
            format!("Fund,Reference,Amount,VAT,Date,Source\r\nPRM01,FILE-1,1200,S,{day},WEB\r\nPRM01,FILE-1,-200,S,{day},WEB\r\n")
        );
        assert!(income.mark_posted(&batch.id, "staff:fay", "Fay Finance").await.unwrap());
        let (read, _) = income.batch(&batch.id).await.unwrap().unwrap();
        assert_eq!((read.status, read.posted_by_label.as_deref()), (BatchStatus::Posted, Some("Fay Finance")));
        assert!(!income.mark_posted(&batch.id, "staff:sam", "Sam").await.unwrap(), "posted once");
        let audit = audited(&week, "income.batch_posted").await;
        assert_eq!(audit.len(), 1, "{audit:?}");
        assert_eq!(audit[0]["detail"]["control_total"], 1000);
    }

    async fn a_day_built_after_its_month_is_locked_posts_into_the_next_open_month(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        let month = counterfoil::domain::income::period_of(d0);
        let next = counterfoil::domain::income::next_period(&month).unwrap();
        week.paid("demo", "LK-1", 900, during(d0, 0)).await;
        let income = &week.app.services.income;
        assert!(income.lock_period(&month, "staff:fay", "Fay Finance").await.unwrap());
        assert!(!income.lock_period(&month, "staff:fay", "Fay Finance").await.unwrap(), "locked once");
        let (batch, round) = week.close(d0).await;
        assert_eq!(round.posted, 1);
        assert_eq!((batch.day, batch.period.as_str()), (d0, next.as_str()));
        let locked = income.locked_periods().await.unwrap();
        assert_eq!(locked.len(), 1);
        assert_eq!(locked[0].locked_by_label, "Fay Finance");
    }
}

each_backend! {
    async fn an_import_holding_a_card_number_never_leaves(backend) {
        use counterfoil::providers::income_system::localgov_ims::LocalGovIms;
        use counterfoil::providers::income_system::{IncomeSystem, IncomeSystemError};
        let week = Week::begin(backend).await;
        let http = counterfoil::outbound::OutboundClient::new(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(3),
        )
        .unwrap();
        let ims = LocalGovIms::new(&week.app.url("/sandbox/localgov-ims"), None, http);
        let pan = crate::helpers::fresh_test_pan();
        let body = json!({"ImportTypeId": 1, "NumberOfRows": 1, "Errors": [],
            "Rows": [{"Narrative": format!("paid with {pan}"), "FundCode": "DEMO"}]});
        let sent = ims.import(serde_json::to_vec(&body).unwrap()).await;
        assert_eq!(sent, Err(IncomeSystemError::CardData));
        assert_eq!(ims.holds(&pan).await, Err(IncomeSystemError::CardData), "nor in a search");
        assert!(week.imports().await.is_empty(), "nothing reached LocalGov IMS");
    }
}

each_backend! {
    async fn a_refused_batch_keyed_in_by_hand_is_never_sent(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        week.ims(json!({"fail_imports": 1, "fail_status": 400})).await;
        week.paid("demo", "BH-1", 1100, during(d0, 0)).await;
        let (batch, round) = week.close(d0).await;
        assert_eq!(round.failed, 1);
        let income = &week.app.services.income;
        assert!(income.mark_posted(&batch.id, "staff:fay", "Fay Finance").await.unwrap());
        let (read, _) = income.batch(&batch.id).await.unwrap().unwrap();
        assert_eq!((read.status, read.posted_by_label.as_deref()), (BatchStatus::Posted, Some("Fay Finance")));
        assert!(!income.post_again(&batch.id, "staff:fay", "Fay Finance").await.unwrap(), "posted stays posted");
        week.clock.advance(std::time::Duration::from_secs(3600));
        assert_eq!(income.post_due().await.unwrap(), Default::default(), "nothing is sent");
        assert!(week.transactions().await.is_empty());
        assert_eq!(week.imports().await.len(), 1, "only the refused attempt reached it");
    }
}

each_backend! {
    async fn an_account_whose_day_cannot_be_coded_holds_up_only_itself(backend) {
        let week = Week::begin(backend).await;
        let d0 = week.day(0);
        let orphan = week.paid("demo", "UC-1", 900, during(d0, 0)).await;
        // Its service is no longer configured (it has no posting codes): it cannot be coded,
        // and leaving it out would lose it from the income system.
        week.app.execute(&format!("UPDATE payments SET service = 'gone' WHERE id = '{orphan}'")).await;
        week.clock.set(crate::income::after(d0));
        let income = &week.app.services.income;
        let round = income.build_due().await.unwrap();
        assert_eq!(round.unbuilt.len(), 1, "{round:?}");
        assert_eq!(round.unbuilt[0].0, "sandbox");
        assert!(round.unbuilt[0].1.contains("gone"), "{:?}", round.unbuilt);
        let accounts: BTreeSet<_> = round.built.iter().map(|b| b.account.as_str()).collect();
        assert!(accounts.contains("stripe-sandbox") && !accounts.contains("sandbox"), "{accounts:?}");
        // Once it is put right, the day is built with it, as the next round finds it.
        week.app.execute(&format!("UPDATE payments SET service = 'demo' WHERE id = '{orphan}'")).await;
        let round = income.build_due().await.unwrap();
        assert!(round.unbuilt.is_empty());
        let sandbox = round.built.iter().find(|b| b.account == "sandbox").unwrap();
        assert_eq!((sandbox.day, sandbox.row_count), (d0, 1));
    }
}
