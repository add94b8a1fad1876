//! The console's templates (compiled into the binary, so `cargo run` needs nothing else) and how
//! money, times and days read on its pages: pounds with separators, UK (Europe/London) time.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Europe::London;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Brand, Staff};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("error.html", include_str!("templates/error.html")),
    (
        "accessibility.html",
        include_str!("templates/accessibility.html"),
    ),
    ("dashboard.html", include_str!("templates/dashboard.html")),
    ("payments.html", include_str!("templates/payments.html")),
    ("payment.html", include_str!("templates/payment.html")),
    ("approvals.html", include_str!("templates/approvals.html")),
    ("decline.html", include_str!("templates/decline.html")),
    ("refunds.html", include_str!("templates/refunds.html")),
    ("attention.html", include_str!("templates/attention.html")),
    ("resolve.html", include_str!("templates/resolve.html")),
    (
        "data_protection.html",
        include_str!("templates/data_protection.html"),
    ),
    ("subject.html", include_str!("templates/subject.html")),
    ("erase.html", include_str!("templates/erase.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("access.html", include_str!("templates/access.html")),
    (
        "key_created.html",
        include_str!("templates/key_created.html"),
    ),
    ("revoke_key.html", include_str!("templates/revoke_key.html")),
    (
        "reconciliation.html",
        include_str!("templates/reconciliation.html"),
    ),
    (
        "reconciliation_run.html",
        include_str!("templates/reconciliation_run.html"),
    ),
    ("takings.html", include_str!("templates/takings.html")),
    ("income.html", include_str!("templates/income.html")),
    (
        "income_batch.html",
        include_str!("templates/income_batch.html"),
    ),
    (
        "income_months.html",
        include_str!("templates/income_months.html"),
    ),
    (
        "income_lock.html",
        include_str!("templates/income_lock.html"),
    ),
    ("payouts.html", include_str!("templates/payouts.html")),
    ("payout.html", include_str!("templates/payout.html")),
    (
        "takings_day.html",
        include_str!("templates/takings_day.html"),
    ),
];

pub struct Templates(Environment<'static>);

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Everything is escaped for HTML, whatever a template is called.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("the console's templates parse");
        }
        Self(env)
    }

    /// Renders `name` with `context` (a JSON object).
    pub fn render(&self, name: &str, context: &Value) -> Result<String, minijinja::Error> {
        self.0
            .get_template(name)?
            .render(minijinja::Value::from_serialize(context))
    }

    /// An error page: the layout without the signed-in parts.
    /// An error page in the console's layout: with the header, the person and the navigation
    /// when someone is signed in.
    pub fn render_error(
        &self,
        brand: &Brand,
        staff: Option<&Staff>,
        heading: &str,
        message: &str,
    ) -> String {
        let mut context = layout(brand, staff, "", heading);
        context.insert("heading".into(), json!(heading));
        context.insert("message".into(), json!(message));
        context.insert("back".into(), json!("/console"));
        self.render("error.html", &Value::Object(context))
            .unwrap_or_else(|_| {
                format!("<!doctype html><title>{heading}</title><h1>{heading}</h1>")
            })
    }
}

fn brand_context(brand: &Brand) -> Value {
    json!({"council_name": brand.council_name, "has_logo": brand.logo.is_some(), "test": brand.test, "idle_seconds": brand.idle_seconds})
}

/// What every page's layout needs: the council, the signed-in person and their permissions, the
/// form token, the section and the title.
pub fn layout(brand: &Brand, staff: Option<&Staff>, nav: &str, title: &str) -> Map<String, Value> {
    use crate::domain::staff::Permission::*;
    let mut context = Map::new();
    context.insert("brand".into(), brand_context(brand));
    context.insert("nav".into(), json!(nav));
    context.insert("title".into(), json!(title));
    if let Some(staff) = staff {
        let member = &staff.member;
        let roles: Vec<_> = member.roles.iter().map(|r| r.title()).collect();
        context.insert(
            "staff".into(),
            json!({
                "name": member.name,
                "roles_text": roles.join(", "),
                "may_view_payments": member.may(ViewPayments),
                "may_view_takings": member.may(ViewTakings),
                "may_refund": member.may(RequestRefund),
                "may_approve": member.may(ApproveRefund),
                "may_act": member.may(ActOnAttention),
                "may_reconcile": member.may(Reconcile),
                "may_post_income": member.may(PostIncome),
                "may_protect_data": member.may(ProtectData),
                "may_manage_access": member.may(ManageAccess),
            }),
        );
        context.insert("csrf".into(), json!(staff.csrf));
    }
    context
}

/// Adds `value` under `key`.
pub fn with(
    mut context: Map<String, Value>,
    key: &str,
    value: impl Serialize,
) -> Map<String, Value> {
    context.insert(
        key.into(),
        serde_json::to_value(value).expect("page values serialise"),
    );
    context
}

/// Pence as a person reads pounds: `£1,234.05`, `-£10.50`.
pub fn money(pence: i64) -> String {
    let sign = if pence < 0 { "-" } else { "" };
    let abs = pence.unsigned_abs();
    let pounds = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in pounds.chars().enumerate() {
        if i > 0 && (pounds.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}£{grouped}.{:02}", abs % 100)
}

/// An instant in UK time, e.g. `1 Dec 2026, 14:05:09`.
pub fn uk_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&London)
        .format("%-d %b %Y, %H:%M:%S")
        .to_string()
}

/// A London day for people, e.g. `Tuesday 1 December 2026`.
pub fn day_text(day: NaiveDate) -> String {
    day.format("%A %-d %B %Y").to_string()
}

/// A status word for people: `in_progress` → `In progress`.
pub fn status_text(status: &str) -> String {
    let spaced = status.replace('_', " ");
    let mut chars = spaced.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => spaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_pounds_with_separators() {
        assert_eq!(money(0), "£0.00");
        assert_eq!(money(5), "£0.05");
        assert_eq!(money(123_405), "£1,234.05");
        assert_eq!(money(10_000_000), "£100,000.00");
        assert_eq!(money(-1050), "-£10.50");
    }

    #[test]
    fn times_are_shown_in_uk_time() {
        let summer = DateTime::parse_from_rfc3339("2026-07-01T23:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(uk_time(summer), "2 Jul 2026, 00:30:00");
        let winter = DateTime::parse_from_rfc3339("2026-12-01T23:30:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(uk_time(winter), "1 Dec 2026, 23:30:00");
        assert_eq!(status_text("in_progress"), "In progress");
    }

    #[test]
    fn every_template_renders_and_escapes() {
        let templates = Templates::new();
        let brand = Brand {
            council_name: "<Test> Council".into(),
            logo: None,
            colour: "#1d4f91".into(),
            test: Some("payments go to a simulator"),
            idle_seconds: 1800,
        };
        let html = templates.render_error(&brand, None, "Oops", "Try again");
        assert!(html.contains("&lt;Test&gt; Council") && !html.contains("<Test>"));
        assert!(html.contains(">TEST<") && html.contains("payments go to a simulator"));
    }
}
