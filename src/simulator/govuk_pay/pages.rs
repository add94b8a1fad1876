//! The hosted payment page a payer is sent to (no card fields: buttons for each outcome).

use crate::simulator::escape_html;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::Utc;

use super::*;

/// The hosted "payment page". It has no card fields at all: three buttons decide the outcome.
#[derive(serde::Deserialize)]
pub(super) struct ChargeToken {
    #[serde(rename = "chargeTokenId")]
    charge_token_id: String,
}

/// The page reached through `next_url_post`: the charge token posted as a form.
pub(super) async fn hosted_page_by_post(
    sim: web::Data<Simulator>,
    form: web::Form<ChargeToken>,
) -> HttpResponse {
    hosted_page(sim, web::Path::from(form.into_inner().charge_token_id)).await
}

pub(super) async fn hosted_page(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    let payment = {
        let mut state = sim.lock();
        if !state.payments.contains_key(id.as_str()) {
            return HttpResponse::NotFound()
                .content_type("text/html; charset=utf-8")
                .body("<!doctype html><title>Not found</title><p>No such simulated payment.</p>");
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let payment = state.payments.get_mut(id.as_str()).expect("checked above");
        if payment.status == "created" {
            payment.move_to("started", None, Utc::now());
            let payment = payment.clone();
            messages.extend(sim.webhook(&state, &payment, "card_payment_started"));
        }
        let payment = state.payments[id.as_str()].clone();
        drop(state);
        sim.dispatch(messages);
        payment
    };
    let amount = format!("£{}.{:02}", payment.amount / 100, payment.amount % 100);
    let body = if payment.finished() {
        format!(
            "<p>This payment is finished ({}).</p><p><a href=\"{}\">Return to the service</a></p>",
            payment.status,
            escape_html(&payment.return_url)
        )
    } else {
        let button = |action: &str, label: &str| {
            format!(
                "<form method=\"post\" action=\"{}/pay/{}/{action}\"><button type=\"submit\" name=\"action\" value=\"{action}\">{label}</button></form>",
                sim.base_url, payment.id
            )
        };
        format!(
            "<p><strong>{}</strong></p><p>Amount: {amount}</p>{}{}{}",
            escape_html(&payment.description),
            button("pay", "Pay (simulated success)"),
            button("decline", "Decline"),
            button("cancel", "Cancel"),
        )
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TEST PAYMENT PAGE – GOV.UK Pay simulator</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.banner{{background:#d4351c;color:#fff;padding:1em;font-weight:bold}}form{{display:inline-block;margin:.5em}}</style></head>\
         <body><div class=\"banner\" role=\"alert\">TEST PAGE – this is Counterfoil's GOV.UK Pay simulator. No real payment is taken and no card details are asked for.</div>\
         <h1>Simulated payment</h1>{body}</body></html>"
    );
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        // Its own inline style sheet; nothing else loads. (No form-action: the pay button's redirect
        // goes to the service's return URL.)
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ))
        .body(page)
}

/// A button on the hosted page: settles the payment and sends the browser back to `return_url`.
pub(super) async fn press_button(
    sim: web::Data<Simulator>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let (return_url, messages) = {
        let mut state = sim.lock();
        if !state.payments.contains_key(&id) {
            return HttpResponse::NotFound().finish();
        }
        let mut messages = sim.expire_if_due(&mut state, &id, Utc::now());
        let entered = state.webhooks.card_details.clone();
        let payment = state.payments.get_mut(&id).expect("checked above");
        if !payment.finished() {
            let (status, code, events): (_, _, &[&str]) = match action.as_str() {
                // A payer who pays is first "succeeded"; then the PSP confirms the capture.
                "pay" => (
                    "success",
                    None,
                    &["card_payment_succeeded", "card_payment_captured"],
                ),
                "decline" => ("failed", Some("P0010"), &["card_payment_failed"]),
                "cancel" => ("failed", Some("P0030"), &["card_payment_failed"]),
                _ => return HttpResponse::NotFound().finish(),
            };
            // Card details exist once the payer has entered them (not when they cancel).
            if action != "cancel" {
                payment.card_details = Some(entered.unwrap_or_else(sample_card_details));
            }
            payment.move_to(status, code, Utc::now());
            let payment = payment.clone();
            for event in events {
                messages.extend(sim.webhook(&state, &payment, event));
            }
        }
        (state.payments[&id].return_url.clone(), messages)
    };
    sim.dispatch(messages);
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, return_url))
        .finish()
}
