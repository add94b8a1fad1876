//! Request bodies parsed into domain types at the edge, every refused field named at once: the
//! services below take only what these return.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::refund::{parse_reason, NewRefund};
use crate::domain::{
    AmountPence, Description, Email, FieldError, Metadata, NewPayment, RequestRef, ReturnUrl,
    ServiceCode,
};
use crate::service::{FieldIssue, ServiceError};

/// Parses a create body into a [`NewPayment`], naming every refused field at once.
pub fn new_payment(
    body: &Value,
    offers: impl Fn(&ServiceCode) -> bool,
    allow_loopback_http: bool,
) -> Result<NewPayment, ServiceError> {
    const KNOWN: &[&str] = &[
        "request_ref",
        "service",
        "amount",
        "description",
        "return_url",
        "email",
        "metadata",
    ];
    let (fields, mut issues) = object_of(body, KNOWN)?;
    let text = |value: &Value| -> Result<String, FieldError> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| FieldError::new("invalid_type", "must be a string"))
    };
    let request_ref = take(fields, &mut issues, "request_ref", true, |v| {
        RequestRef::parse(&text(v)?)
    });
    let service = take(fields, &mut issues, "service", true, |v| {
        let code = ServiceCode::parse(&text(v)?)?;
        if offers(&code) {
            Ok(code)
        } else {
            Err(FieldError::new(
                "unknown_service",
                "is not a service configured in Counterfoil",
            ))
        }
    });
    let amount = take(fields, &mut issues, "amount", true, |v| {
        let pence = v
            .as_i64()
            .ok_or_else(|| FieldError::new("invalid_type", "must be a whole number of pence"))?;
        AmountPence::parse(pence).map_err(|e| FieldError::new("out_of_range", e.to_string()))
    });
    let description = take(fields, &mut issues, "description", true, |v| {
        Description::parse(&text(v)?)
    });
    let return_url = take(fields, &mut issues, "return_url", true, |v| {
        ReturnUrl::parse(&text(v)?, allow_loopback_http)
    });
    let email = take(fields, &mut issues, "email", false, |v| {
        Email::parse(&text(v)?)
    });
    let metadata = take(fields, &mut issues, "metadata", false, |v| {
        Metadata::parse(metadata_pairs(v)?)
    });
    match (request_ref, service, amount, description, return_url) {
        (Some(request_ref), Some(service), Some(amount), Some(description), Some(return_url))
            if issues.is_empty() =>
        {
            Ok(NewPayment {
                request_ref,
                service,
                amount,
                description,
                return_url,
                email,
                metadata: metadata.unwrap_or_default(),
            })
        }
        _ => Err(ServiceError::Validation(issues)),
    }
}

/// Parses a refund request, naming every refused field at once.
pub fn new_refund(body: &Value) -> Result<NewRefund, ServiceError> {
    let (fields, mut issues) = object_of(body, &["amount", "reason"])?;
    let amount = take(fields, &mut issues, "amount", true, |v| {
        let pence = v
            .as_i64()
            .ok_or_else(|| FieldError::new("invalid_type", "must be a whole number of pence"))?;
        AmountPence::parse(pence).map_err(|e| FieldError::new("out_of_range", e.to_string()))
    });
    let reason = take(fields, &mut issues, "reason", true, |v| {
        parse_reason(
            v.as_str()
                .ok_or_else(|| FieldError::new("invalid_type", "must be a string"))?,
        )
    });
    match (amount, reason) {
        (Some(amount), Some(reason)) if issues.is_empty() => Ok(NewRefund { amount, reason }),
        _ => Err(ServiceError::Validation(issues)),
    }
}

fn metadata_pairs(value: &Value) -> Result<BTreeMap<String, String>, FieldError> {
    let not_strings = || FieldError::new("invalid_type", "must be an object of string pairs");
    value
        .as_object()
        .ok_or_else(not_strings)?
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(not_strings)?.to_owned())))
        .collect()
}

/// The body as a JSON object, with an issue for each field it has that `known` does not name.
fn object_of<'a>(
    body: &'a Value,
    known: &[&str],
) -> Result<(&'a serde_json::Map<String, Value>, Vec<FieldIssue>), ServiceError> {
    let Some(fields) = body.as_object() else {
        return Err(ServiceError::Validation(vec![FieldIssue::new(
            "body",
            FieldError::new("invalid_type", "must be a JSON object"),
        )]));
    };
    let issues = fields
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            FieldIssue::new(
                k.clone(),
                FieldError::new("unknown_field", "is not a field of this request"),
            )
        })
        .collect();
    Ok((fields, issues))
}

/// Parses a reconciliation run's `{account, from, to}` (RFC 3339 times); `knows_account` says
/// which accounts exist.
pub fn reconciliation_run(
    body: &Value,
    knows_account: impl Fn(&str) -> bool,
) -> Result<(String, DateTime<Utc>, DateTime<Utc>), ServiceError> {
    let mut issues = Vec::new();
    let fields = body.as_object().cloned().unwrap_or_default();
    for key in fields
        .keys()
        .filter(|k| !["account", "from", "to"].contains(&k.as_str()))
    {
        issues.push(FieldIssue::new(
            key.clone(),
            FieldError::new("unknown_field", "is not a field of this request"),
        ));
    }
    let account = take(&fields, &mut issues, "account", true, |v| {
        let name = v
            .as_str()
            .ok_or_else(|| FieldError::new("invalid_type", "must be a string"))?;
        if knows_account(name) {
            Ok(name.to_owned())
        } else {
            Err(FieldError::new(
                "unknown_account",
                "is not a provider account configured in Counterfoil",
            ))
        }
    });
    let time = |v: &Value| {
        v.as_str()
            .ok_or_else(|| FieldError::new("invalid_format", "must be an RFC 3339 date-time"))
            .and_then(crate::domain::dates::parse_instant)
    };
    let from = take(&fields, &mut issues, "from", true, time);
    let to = take(&fields, &mut issues, "to", true, time);
    if let (Some(from), Some(to)) = (from, to) {
        if to <= from {
            issues.push(FieldIssue::new(
                "to",
                FieldError::new("out_of_range", "must be after from"),
            ));
        }
    }
    match (account, from, to) {
        (Some(account), Some(from), Some(to)) if issues.is_empty() => Ok((account, from, to)),
        _ => Err(ServiceError::Validation(issues)),
    }
}

/// Parses an erasure request's `{request_ref}`.
pub fn erasure(body: &Value) -> Result<RequestRef, ServiceError> {
    let (fields, mut issues) = object_of(body, &["request_ref"])?;
    let request_ref = take(fields, &mut issues, "request_ref", true, |v| {
        RequestRef::parse(
            v.as_str()
                .ok_or_else(|| FieldError::new("invalid_type", "must be a string"))?,
        )
    });
    match request_ref {
        Some(r) if issues.is_empty() => Ok(r),
        _ => Err(ServiceError::Validation(issues)),
    }
}

/// Parses one field of a request body: its value when present and valid, `None` when absent (or
/// refused, in which case why is added to `issues`).
fn take<T>(
    fields: &serde_json::Map<String, serde_json::Value>,
    issues: &mut Vec<FieldIssue>,
    name: &str,
    required: bool,
    parse: impl FnOnce(&serde_json::Value) -> Result<T, FieldError>,
) -> Option<T> {
    let result = match fields.get(name) {
        None | Some(serde_json::Value::Null) if required => {
            Err(FieldError::new("required", "is required"))
        }
        None | Some(serde_json::Value::Null) => return None,
        Some(value) => parse(value),
    };
    result
        .map_err(|e| issues.push(FieldIssue::new(name, e)))
        .ok()
}
