//! Listing payments newest first, a keyset page at a time, with the list's query parameters.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::domain::{FieldError, PaymentId, PaymentStatus, RequestRef, ServiceCode};
use crate::service::{FieldIssue, ServiceError};
use crate::store::PaymentQuery;

use super::*;

impl PaymentService {
    /// Lists payments newest first, from query parameters (each bad one is named).
    pub async fn list(
        &self,
        params: &HashMap<String, String>,
    ) -> Result<Page<Payment>, ServiceError> {
        let query = parse_list_query(params)?;
        let limit = query.limit as usize;
        let mut rows = self
            .store
            .list_payments(&PaymentQuery {
                limit: query.limit + 1,
                ..query
            })
            .await?;
        let next_cursor = (rows.len() > limit).then(|| {
            rows.truncate(limit);
            let last = rows.last().expect("limit is at least 1");
            encode_cursor(last.created_at, &last.id)
        });
        Ok(Page {
            items: rows,
            next_cursor,
        })
    }
}

impl PaymentService {
    /// Up to `query.limit` payments matching a query already parsed (the console's search and its
    /// CSV, which pages through every match by `before`), newest first.
    pub async fn search(&self, query: &PaymentQuery) -> Result<Vec<Payment>, ServiceError> {
        Ok(self.store.list_payments(query).await?)
    }
}

pub(crate) fn encode_cursor(at: DateTime<Utc>, id: &PaymentId) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}|{id}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))
}

pub(crate) fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, PaymentId)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        PaymentId::parse(id).ok()?,
    ))
}

fn parse_list_query(params: &HashMap<String, String>) -> Result<PaymentQuery, ServiceError> {
    let mut issues = Vec::new();
    let mut query = PaymentQuery {
        limit: 50,
        ..PaymentQuery::default()
    };
    for (name, value) in params {
        let result: Result<(), FieldError> = match name.as_str() {
            "request_ref" => RequestRef::parse(value).map(|r| query.request_ref = Some(r.into_inner())),
            "service" => ServiceCode::parse(value).map(|s| query.service = Some(s.into_inner())),
            "status" => value
                .parse::<PaymentStatus>()
                .map(|s| query.status = Some(s))
                .map_err(|_| FieldError::new("invalid_value", "must be one of created, in_progress, succeeded, failed, cancelled, expired, error")),
            "created_from" | "created_to" => crate::domain::dates::parse_instant(value)
                .map(|t| {
                    if name == "created_from" { query.created_from = Some(t) } else { query.created_to = Some(t) }
                }),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => {
                    query.limit = n;
                    Ok(())
                }
                _ => Err(FieldError::new("out_of_range", "must be a whole number from 1 to 100")),
            },
            "cursor" => decode_cursor(value)
                .map(|c| query.before = Some(c))
                .ok_or_else(|| FieldError::new("invalid_format", "is not a cursor this API gave out")),
            _ => Err(FieldError::new("unknown_parameter", "is not a parameter of this listing")),
        };
        if let Err(e) = result {
            issues.push(FieldIssue::new(name.clone(), e));
        }
    }
    if issues.is_empty() {
        Ok(query)
    } else {
        issues.sort_by(|a, b| a.field.cmp(&b.field));
        Err(ServiceError::Validation(issues))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = PaymentId::new();
        let at = Utc::now();
        let (back_at, back_id) = decode_cursor(&encode_cursor(at, &id)).unwrap();
        assert_eq!(back_id, id);
        assert_eq!(back_at.timestamp_micros(), at.timestamp_micros());
        assert!(decode_cursor("not-a-cursor").is_none());
    }

    #[test]
    fn list_parameters_are_each_named_when_wrong() {
        let params: HashMap<String, String> = [
            ("status", "success"),
            ("limit", "0"),
            ("created_from", "yesterday"),
            ("colour", "blue"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let Err(ServiceError::Validation(issues)) = parse_list_query(&params) else {
            panic!("expected validation errors");
        };
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["colour", "created_from", "limit", "status"]);
    }
}
