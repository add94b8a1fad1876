//! The hosted Checkout page a payer is sent to (no card fields: buttons for each outcome).

use crate::simulator::escape_html;
use actix_web::{web, HttpResponse};

use super::*;

/// The hosted "Checkout page": no card fields, three buttons.
pub(super) async fn hosted_page(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    let (session, events) = {
        let mut state = sim.lock();
        let events = expire_if_due(&sim, &mut state, &id);
        (state.sessions.get(id.as_str()).cloned(), events)
    };
    sim.dispatch(events);
    let Some(s) = session else {
        return HttpResponse::NotFound()
            .content_type("text/html; charset=utf-8")
            .body(
                "<!doctype html><title>Not found</title><p>No such simulated Checkout Session.</p>",
            );
    };
    let amount = format!("£{}.{:02}", s.amount / 100, s.amount % 100);
    let body = if s.status != "open" {
        format!("<p>This Checkout Session is {}.</p>", s.status)
    } else {
        let button = |action: &str, label: &str| {
            format!("<form method=\"post\" action=\"{}/pay/{}/{action}\"><button type=\"submit\">{label}</button></form>", sim.base_url, s.id)
        };
        format!(
            "<p><strong>{}</strong></p><p>Amount: {amount}</p>{}{}{}",
            escape_html(&s.name),
            button("pay", "Pay (simulated success)"),
            button("fail", "Pay by a delayed method that then fails"),
            button("cancel", "Back to the service")
        )
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TEST CHECKOUT PAGE – Stripe simulator</title>\
             <style>body{{font-family:sans-serif;max-width:40em;margin:2em auto}}.banner{{background:#635bff;color:#fff;padding:1em;font-weight:bold}}form{{display:inline-block;margin:.5em}}</style></head>\
             <body><div class=\"banner\" role=\"alert\">TEST PAGE – this is Counterfoil's Stripe Checkout simulator. No real payment is taken and no card details are asked for.</div>\
             <h1>Simulated Checkout</h1>{body}</body></html>"))
}

pub(super) async fn press_button(
    sim: web::Data<Simulator>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let mut events = Vec::new();
    let redirect = {
        let mut state = sim.lock();
        events.extend(expire_if_due(&sim, &mut state, &id));
        let Some(s) = state.sessions.get(&id).cloned() else {
            return HttpResponse::NotFound().finish();
        };
        if s.status != "open" {
            return HttpResponse::Conflict().body(format!("The session is {}.", s.status));
        }
        match action.as_str() {
            "pay" | "fail" => {
                let intent = sim.next_id(&mut state, "pi");
                let session = state.sessions.get_mut(&id).expect("checked above");
                session.status = "complete";
                session.intent = Some(intent);
                if action == "pay" {
                    session.payment_status = "paid";
                    session.intent_status = "succeeded";
                } else {
                    session.payment_status = "unpaid";
                    session.intent_status = "processing";
                }
                let s = session.clone();
                let completed = sim.session_json(&s, false);
                events.extend(sim.event(
                    &mut state,
                    &s.owner,
                    "checkout.session.completed",
                    completed,
                ));
                if action == "pay" {
                    let charge = sim.charge_json(&state, &s, 0);
                    events.extend(sim.event(&mut state, &s.owner, "charge.succeeded", charge));
                } else {
                    let session = state.sessions.get_mut(&id).expect("checked above");
                    session.intent_status = "canceled";
                    let s = session.clone();
                    let failed = sim.session_json(&s, false);
                    events.extend(sim.event(
                        &mut state,
                        &s.owner,
                        "checkout.session.async_payment_failed",
                        failed,
                    ));
                }
                s.success_url.replace("{CHECKOUT_SESSION_ID}", &s.id)
            }
            "cancel" => s.cancel_url.clone(),
            _ => return HttpResponse::NotFound().finish(),
        }
    };
    sim.dispatch(events);
    HttpResponse::SeeOther()
        .insert_header(("Location", redirect))
        .finish()
}
