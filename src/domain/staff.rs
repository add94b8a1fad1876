//! Council staff in the console: their roles, what each role may do, how an identity provider's
//! role claim maps onto them, the two-person rule for large refunds, and pounds as people type them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::refs::FieldError;

/// A console role. Roles add up: a person may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StaffRole {
    /// Sees payments, takings and downloads.
    Viewer,
    /// A viewer who may ask for refunds, and act on what needs a person and on reconciliation.
    Refunder,
    /// A viewer who may approve refunds that need a second person (never their own), and act on
    /// what needs a person and on reconciliation.
    RefundApprover,
    /// The data-protection officer: sees payments, finds, exports and erases a person's
    /// records, and reads retention and the audit trail.
    Dpo,
    /// Everything the others may do.
    Admin,
}

pub const ALL_ROLES: [StaffRole; 5] = [
    StaffRole::Viewer,
    StaffRole::Refunder,
    StaffRole::RefundApprover,
    StaffRole::Dpo,
    StaffRole::Admin,
];

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Refunder => "refunder",
            Self::RefundApprover => "refund_approver",
            Self::Dpo => "dpo",
            Self::Admin => "admin",
        }
    }

    /// How the role reads on a page.
    pub fn title(self) -> &'static str {
        match self {
            Self::Viewer => "Viewer",
            Self::Refunder => "Refunder",
            Self::RefundApprover => "Refund approver",
            Self::Dpo => "Data protection officer",
            Self::Admin => "Administrator",
        }
    }

    fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Self::Admin => true,
            Self::Viewer => matches!(permission, ViewPayments | ViewTakings),
            Self::Refunder => matches!(
                permission,
                ViewPayments
                    | ViewTakings
                    | RequestRefund
                    | ActOnAttention
                    | Reconcile
                    | PostIncome
            ),
            Self::RefundApprover => matches!(
                permission,
                ViewPayments
                    | ViewTakings
                    | ApproveRefund
                    | ActOnAttention
                    | Reconcile
                    | PostIncome
            ),
            Self::Dpo => matches!(permission, ViewPayments | ProtectData),
        }
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("console roles are viewer, refunder, refund_approver, dpo and admin")]
pub struct UnknownStaffRole;

impl FromStr for StaffRole {
    type Err = UnknownStaffRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_ROLES
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownStaffRole)
    }
}

/// What a page or form needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewPayments,
    /// The dashboard's and takings pages' totals, and the ledger downloads.
    ViewTakings,
    RequestRefund,
    ApproveRefund,
    /// Act on what needs a person: ask the provider, retry a notification, mark resolved.
    ActOnAttention,
    /// Start reconciliation runs and resolve their discrepancies.
    Reconcile,
    /// Say an income batch was imported, ask for a refused one to be posted again, lock a month,
    /// read the providers' payouts now.
    PostIncome,
    /// Find a person's records, export them, erase them; retention and the audit trail.
    ProtectData,
    /// API keys, CRM endpoints, sign-ins and console sessions.
    ManageAccess,
}

/// Whether any of `roles` grants `permission`.
pub fn may(roles: &BTreeSet<StaffRole>, permission: Permission) -> bool {
    roles.iter().any(|r| r.grants(permission))
}

/// The console roles an identity provider's claim values give, by the configured mapping
/// (claim value → console roles). Values with no mapping give nothing.
pub fn roles_from_claim(
    values: &[String],
    mapping: &BTreeMap<String, Vec<StaffRole>>,
) -> BTreeSet<StaffRole> {
    values
        .iter()
        .filter_map(|v| mapping.get(v))
        .flatten()
        .copied()
        .collect()
}

/// A console session that is live now, as an administrator sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSession {
    /// What names the session to end it (the SHA-256 of its token, never the token).
    pub handle: String,
    /// `staff:<subject at the identity provider>`.
    pub subject: String,
    pub name: String,
    /// The console roles at sign-in, comma-separated.
    pub roles: String,
    pub signed_in_at: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
}

/// Who a person is, as the console records them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// The identity provider's stable subject identifier.
    pub subject: String,
    pub name: String,
    pub roles: BTreeSet<StaffRole>,
}

impl StaffMember {
    /// The audit trail's actor id: the issuer's subject, marked as a person (not an API key).
    pub fn actor_id(&self) -> String {
        format!("staff:{}", self.subject)
    }

    /// The audit trail's actor label: name and roles.
    pub fn actor_label(&self) -> String {
        let roles: Vec<_> = self.roles.iter().map(|r| r.as_str()).collect();
        format!("{} ({})", self.name, roles.join(", "))
    }

    pub fn may(&self, permission: Permission) -> bool {
        may(&self.roles, permission)
    }
}

/// Whether a refund of `amount` pence needs a second person's approval: above the service's
/// threshold (a threshold of 0 means every refund does).
pub fn needs_second_person(amount: i64, threshold: i64) -> bool {
    amount > threshold
}

/// How much one person may refund alone: the two-person rule as finance auditors mean it,
/// counted over what they have already refunded alone, not one request at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoloAllowance {
    /// On one payment, everything this person refunded without a second person, this one included.
    pub per_payment: i64,
    /// In one London day, across every payment (none: no daily limit).
    pub per_day: Option<i64>,
}

/// What one person has already refunded alone (refunds not failed, sent without an approver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefundedAlone {
    pub on_payment: i64,
    pub today: i64,
}

impl SoloAllowance {
    /// Whether `amount` more, on top of what was `already` refunded alone, needs a second person.
    pub fn needs_second_person(&self, amount: i64, already: RefundedAlone) -> bool {
        needs_second_person(already.on_payment.saturating_add(amount), self.per_payment)
            || self.per_day.is_some_and(|limit| {
                needs_second_person(already.today.saturating_add(amount), limit)
            })
    }
}

/// Why someone may not approve a refund waiting for a second person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalRefused {
    /// The requester cannot be their own second person.
    OwnRequest,
    /// Only a refund approver (or an administrator) approves.
    NotAnApprover,
}

/// The two-person rule: the approver holds `refund_approver` (or `admin`) and is not the requester.
pub fn may_approve(approver: &StaffMember, requester_id: &str) -> Result<(), ApprovalRefused> {
    if approver.actor_id() == requester_id {
        Err(ApprovalRefused::OwnRequest)
    } else if !approver.may(Permission::ApproveRefund) {
        Err(ApprovalRefused::NotAnApprover)
    } else {
        Ok(())
    }
}

/// Pounds and pence as a person types them (`12`, `12.5`, `12.50`, `£1,234.05`) into pence.
/// Refuses fractions of a penny, signs, letters and anything over £100,000.
pub fn parse_pounds(text: &str) -> Result<i64, FieldError> {
    let invalid = || {
        FieldError::new(
            "invalid_format",
            "Enter an amount in pounds and pence, like 12.50",
        )
    };
    let cleaned: String = text
        .trim()
        .trim_start_matches('£')
        .chars()
        .filter(|c| *c != ',')
        .collect();
    let (pounds, pence) = match cleaned.split_once('.') {
        Some((p, f)) => (p, f),
        None => (cleaned.as_str(), ""),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if pounds.is_empty() && pence.is_empty() || !digits(pounds) || !digits(pence) {
        return Err(invalid());
    }
    if pence.len() > 2 {
        return Err(FieldError::new(
            "invalid_format",
            "Enter an amount with no more than 2 digits of pence",
        ));
    }
    if pounds.len() > 6 {
        return Err(too_large());
    }
    let whole: i64 = if pounds.is_empty() {
        0
    } else {
        pounds.parse().map_err(|_| invalid())?
    };
    let fraction: i64 = match pence.len() {
        0 => 0,
        1 => pence.parse::<i64>().map_err(|_| invalid())? * 10,
        _ => pence.parse().map_err(|_| invalid())?,
    };
    let total = whole * 100 + fraction;
    if total <= 0 {
        return Err(FieldError::new(
            "too_small",
            "Enter an amount of at least 1p",
        ));
    }
    if total > super::AmountPence::MAX {
        return Err(too_large());
    }
    Ok(total)
}

fn too_large() -> FieldError {
    FieldError::new("too_large", "Enter an amount of no more than £100,000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(subject: &str, roles: &[StaffRole]) -> StaffMember {
        StaffMember {
            subject: subject.into(),
            name: "Test Person".into(),
            roles: roles.iter().copied().collect(),
        }
    }

    #[test]
    fn each_role_grants_only_what_it_says() {
        use Permission::*;
        let viewer = member("a", &[StaffRole::Viewer]);
        assert!(viewer.may(ViewPayments) && viewer.may(ViewTakings));
        assert!(!viewer.may(RequestRefund) && !viewer.may(ApproveRefund));
        let refunder = member("b", &[StaffRole::Refunder]);
        assert!(refunder.may(RequestRefund) && !refunder.may(ApproveRefund));
        let approver = member("c", &[StaffRole::RefundApprover]);
        assert!(approver.may(ApproveRefund) && !approver.may(RequestRefund));
        let dpo = member("d", &[StaffRole::Dpo]);
        assert!(dpo.may(ViewPayments) && !dpo.may(ViewTakings) && !dpo.may(RequestRefund));
        let admin = member("e", &[StaffRole::Admin]);
        assert!([ViewPayments, ViewTakings, RequestRefund, ApproveRefund]
            .into_iter()
            .all(|p| admin.may(p)));
        assert!(!member("f", &[]).may(ViewPayments));
    }

    #[test]
    fn claim_values_map_to_roles_and_unknown_values_give_nothing() {
        let mapping: BTreeMap<String, Vec<StaffRole>> = [
            ("Finance.Read".to_string(), vec![StaffRole::Viewer]),
            (
                "Finance.Lead".to_string(),
                vec![StaffRole::Refunder, StaffRole::RefundApprover],
            ),
        ]
        .into();
        let roles = roles_from_claim(&["Finance.Lead".into(), "Something.Else".into()], &mapping);
        assert_eq!(
            roles,
            [StaffRole::Refunder, StaffRole::RefundApprover].into()
        );
        assert!(roles_from_claim(&["finance.read".into()], &mapping).is_empty());
    }

    #[test]
    fn the_two_person_rule_refuses_the_requester_and_non_approvers() {
        let requester = member("alice", &[StaffRole::Refunder, StaffRole::RefundApprover]);
        let other = member("bob", &[StaffRole::RefundApprover]);
        let viewer = member("carol", &[StaffRole::Viewer]);
        assert_eq!(
            may_approve(&requester, &requester.actor_id()),
            Err(ApprovalRefused::OwnRequest)
        );
        assert_eq!(
            may_approve(&viewer, &requester.actor_id()),
            Err(ApprovalRefused::NotAnApprover)
        );
        assert_eq!(may_approve(&other, &requester.actor_id()), Ok(()));
        assert!(needs_second_person(10_001, 10_000));
        assert!(!needs_second_person(10_000, 10_000));
        assert!(needs_second_person(1, 0));
    }

    #[test]
    fn what_one_person_refunds_alone_counts_towards_the_threshold() {
        let rule = SoloAllowance {
            per_payment: 50_000,
            per_day: None,
        };
        let done = |on_payment| RefundedAlone {
            on_payment,
            today: on_payment,
        };
        // Four requests of £500 on one payment: the first fits, the second does not.
        assert!(!rule.needs_second_person(50_000, done(0)));
        assert!(rule.needs_second_person(50_000, done(50_000)));
        assert!(rule.needs_second_person(1, done(50_000)));
        assert!(!rule.needs_second_person(20_000, done(30_000)));
        let daily = SoloAllowance {
            per_day: Some(100_000),
            ..rule
        };
        let elsewhere = RefundedAlone {
            on_payment: 0,
            today: 90_000,
        };
        assert!(daily.needs_second_person(20_000, elsewhere));
        assert!(!rule.needs_second_person(20_000, elsewhere));
    }

    #[test]
    fn pounds_are_read_as_people_type_them() {
        for (typed, pence) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("£1,234.05", 123_405),
            (" 0.01 ", 1),
            (".5", 50),
            ("100000", 10_000_000),
        ] {
            assert_eq!(parse_pounds(typed), Ok(pence), "{typed}");
        }
        for typed in [
            "",
            "£",
            "12.505",
            "-5",
            "1e3",
            "twelve",
            "0",
            "0.00",
            "100000.01",
            "12..5",
            "1 2",
        ] {
            assert!(parse_pounds(typed).is_err(), "{typed}");
        }
    }
}
