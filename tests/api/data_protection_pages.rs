//! The data-protection officer's pages over HTTP: a person found by CRM reference and by email
//! (any case), their export downloaded, their personal data erased after a confirmation that says
//! what goes and what stays, and then absent from the export; retention with a dry-run preview;
//! the audit trail filtered and verified. Nobody else may use any of it.

use reqwest::StatusCode;

use crate::console::{hidden, location, page, paid, post_form, signed_in};
use crate::helpers::{payment_body, TestApp};

each_backend! {
    async fn a_person_is_found_exported_and_erased_and_then_absent_from_their_export(backend) {
        let app = TestApp::spawn(backend).await;
        let id = paid(&app, "CRM-DPO-1").await;
        let mut other = payment_body("CRM-DPO-2");
        other["email"] = "someone.else@example.org".into();
        assert_eq!(app.create_payment("dpo-2", &other).await.status(), 201);

        let dana = signed_in(&app, "test-dpo").await;
        let (status, found) = page(&dana, &app, "/console/data-protection?email=RESIDENT%40example.org").await;
        assert_eq!(status, 200);
        assert!(found.contains("CRM-DPO-1") && !found.contains("CRM-DPO-2"), "by email, any case");
        let (_, found) = page(&dana, &app, "/console/data-protection?reference=CRM-DPO-2").await;
        assert!(found.contains("CRM-DPO-2") && !found.contains("CRM-DPO-1"));
        let (status, _) = page(&dana, &app, "/console/data-protection?email=not-an-email").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        let (status, subject) = page(&dana, &app, "/console/data-protection/subject?reference=CRM-DPO-1").await;
        assert_eq!(status, 200);
        assert!(subject.contains("resident@example.org") && subject.contains(&id));
        let export = dana.get(app.url("/console/data-protection/subject/export.json?reference=CRM-DPO-1")).send().await.unwrap();
        assert_eq!(export.status(), 200);
        assert!(export.headers()["content-disposition"].to_str().unwrap().contains("subject-export-CRM-DPO-1.json"));
        let before = export.text().await.unwrap();
        assert!(before.contains("resident@example.org") && before.contains("Resident parking permit"));

        let (status, confirm) = page(&dana, &app, "/console/data-protection/erase?reference=CRM-DPO-1").await;
        assert_eq!(status, 200);
        for said in ["This cannot be undone", "the email address each payment was made with", "What is kept", "amounts, dates, statuses"] {
            assert!(confirm.contains(said), "{said}");
        }
        let csrf = hidden(&confirm, "csrf_token");
        let erased = post_form(&dana, &app, "/console/data-protection/erase", &[("csrf_token", csrf.as_str()), ("reference", "CRM-DPO-1")]).await;
        assert_eq!(location(&erased), "/console/data-protection/subject?reference=CRM-DPO-1&done=erased#main");
        let (_, subject) = page(&dana, &app, "/console/data-protection/subject?reference=CRM-DPO-1&done=erased").await;
        assert!(subject.contains("Personal data erased") && !subject.contains("resident@example.org"));

        for path in ["/console/data-protection/subject/export.json?reference=CRM-DPO-1", "/console/data-protection/subject/export.csv?reference=CRM-DPO-1"] {
            let after = dana.get(app.url(path)).send().await.unwrap().text().await.unwrap();
            assert!(!after.contains("resident@example.org") && !after.contains("Resident parking permit"), "{path}: {after}");
            assert!(after.contains("[erased]") && after.contains("2500"), "the money facts stay: {after}");
        }
        // The other person's records are untouched.
        assert_eq!(app.get_payment(&id).await["amount"], 2500);

        // Retention: settings, and a dry run that changes nothing.
        let (_, home) = page(&dana, &app, "/console/data-protection").await;
        assert!(home.contains("Pseudonymised 90 days after a payment is finished"));
        let preview = post_form(&dana, &app, "/console/data-protection/preview", &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(preview.status(), 200);
        assert!(preview.text().await.unwrap().contains("Nothing has been changed"));

        // The audit trail: filtered, and verified in Dana's name.
        let verified = post_form(&dana, &app, "/console/audit/verify", &[("csrf_token", csrf.as_str())]).await;
        assert_eq!(location(&verified), "/console/audit?done=verified#main");
        let (_, trail) = page(&dana, &app, "/console/audit?done=verified").await;
        assert!(trail.contains("The audit trail is intact") && trail.contains("Dana Protection"), "{trail}");
        let (_, mine) = page(&dana, &app, "/console/audit?who=dana&action=data_protection.").await;
        assert_eq!(mine.matches("<td>data_protection.exported</td>").count(), 3, "{mine}");
        assert_eq!(mine.matches("<td>data_protection.erased</td>").count(), 1);
        assert!(!mine.contains("console.viewed"));
        let (_, about) = page(&dana, &app, "/console/audit?reference=CRM-DPO-1").await;
        assert!(about.contains("<td>data_protection.erased</td>") && !about.contains("<td>audit.verified</td>"));
        let acts = crate::console::actions_of(&app, "staff:test-dpo").await;
        assert_eq!(acts, ["console.signed_in", "data_protection.exported", "data_protection.erased",
                          "data_protection.exported", "data_protection.exported", "retention.previewed", "audit.verified"]);
    }

    async fn only_the_dpo_and_administrators_may_use_the_data_protection_pages(backend) {
        let app = TestApp::spawn(backend).await;
        paid(&app, "CRM-DPO-3").await;
        for who in ["test-viewer", "test-refunder", "test-approver"] {
            let browser = signed_in(&app, who).await;
            for path in ["/console/data-protection", "/console/data-protection/subject?reference=CRM-DPO-3",
                         "/console/data-protection/subject/export.json?reference=CRM-DPO-3",
                         "/console/data-protection/erase?reference=CRM-DPO-3", "/console/audit"] {
                let (status, html) = page(&browser, &app, path).await;
                assert_eq!(status, StatusCode::FORBIDDEN, "{who} {path}");
                assert!(!html.contains("resident@example.org"));
            }
            let (_, home) = page(&browser, &app, "/console").await;
            let csrf = hidden(&home, "csrf_token");
            for path in ["/console/data-protection/erase", "/console/data-protection/preview", "/console/audit/verify"] {
                let tried = post_form(&browser, &app, path, &[("csrf_token", csrf.as_str()), ("reference", "CRM-DPO-3")]).await;
                assert_eq!(tried.status(), StatusCode::FORBIDDEN, "{who} {path}");
            }
        }
        let ada = signed_in(&app, "test-admin").await;
        let (status, _) = page(&ada, &app, "/console/data-protection/subject?reference=CRM-DPO-3").await;
        assert_eq!(status, 200);
        let query = counterfoil::domain::queries::PaymentQuery { limit: 5, ..Default::default() };
        let held = app.get_payment(app.services.payments.search(&query).await.unwrap()[0].id.as_ref()).await;
        assert_eq!(held["description"], "Resident parking permit, zone B", "nothing was erased");
    }
}
