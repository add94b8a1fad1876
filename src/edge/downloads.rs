//! Downloads both edges give: the ledger for a period, streamed as CSV or JSON a page at a time.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse, ResponseError};

use crate::service::ledger::{csv_line, Format, CSV_HEADER};
use crate::service::{AppServices, ServiceError};

/// A page of a download that could not be read: the stream ends there (the client sees a
/// truncated body and the log says why).
#[derive(Debug, thiserror::Error)]
#[error("a page of the download could not be read: {0}")]
pub struct DownloadFailed(ServiceError);

impl ResponseError for DownloadFailed {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// The ledger for `query` as a streamed CSV or JSON download (any size, a page at a time): the
/// API's and the console's downloads alike.
pub fn ledger_download(
    services: &AppServices,
    query: &crate::service::ledger::LedgerQuery,
) -> HttpResponse {
    use futures_util::StreamExt;
    let pages = services.ledger.pages(query);
    let chunk = |text: String| Ok::<_, DownloadFailed>(web::Bytes::from(text));
    match query.format {
        Format::Csv => {
            let body = futures_util::stream::once(async move { chunk(CSV_HEADER.to_owned()) })
                .chain(pages.map(move |page| {
                    page.map(|entries| {
                        web::Bytes::from(entries.iter().map(csv_line).collect::<String>())
                    })
                    .map_err(DownloadFailed)
                }));
            let filename = format!("ledger-{}-to-{}.csv", query.from, query.to);
            HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    "Content-Disposition",
                    format!("attachment; filename=\"{filename}\""),
                ))
                .streaming(body)
        }
        Format::Json => {
            let head = format!(
                "{{\"from\":\"{}\",\"to\":\"{}\",\"items\":[",
                query.from, query.to
            );
            let mut first = true;
            let items = pages.map(move |page| {
                let entries = page.map_err(DownloadFailed)?;
                let mut text = String::new();
                for entry in &entries {
                    if !std::mem::take(&mut first) {
                        text.push(',');
                    }
                    text.push_str(&serde_json::to_string(entry).expect("entries serialise"));
                }
                Ok(web::Bytes::from(text))
            });
            let body = futures_util::stream::once(async move { chunk(head) })
                .chain(items)
                .chain(futures_util::stream::once(
                    async move { chunk("]}".to_owned()) },
                ));
            HttpResponse::Ok()
                .content_type("application/json")
                .streaming(body)
        }
    }
}
