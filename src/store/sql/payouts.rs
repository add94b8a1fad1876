//! The SQL of [`PayoutStore`](crate::store::PayoutStore).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use super::*;
use crate::domain::payout::{Payout, PayoutLine};
use crate::domain::provider_view::{ProviderPayout, ProviderPayoutItem};
use crate::store::backend::{Backend, ReadRow};
use crate::store::guard::{statement, Builder};
use crate::store::*;

const PAYOUT_COLUMNS: &str = "id, account, amount, arrival_date, status, created_at, read_at";

fn payout_from_row(row: &impl ReadRow) -> Result<Payout, StoreError> {
    let arrival: String = row.col("arrival_date")?;
    Ok(Payout {
        id: row.col("id")?,
        account: row.col("account")?,
        amount: row.col("amount")?,
        arrival_date: NaiveDate::parse_from_str(&arrival, "%Y-%m-%d")
            .map_err(|_| StoreError::Corrupt("payouts.arrival_date".into()))?,
        status: row.col("status")?,
        created_at: row.col("created_at")?,
        read_at: row.col("read_at")?,
    })
}

#[async_trait]
impl<B: Backend> PayoutStore for SqlStore<B> {
    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payout_status", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payout_status(&self, account: &str, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            statement::<B>("SELECT status FROM payouts WHERE account = $1 AND id = $2")
                .bind(account)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.col("status"))
                .transpose()?,
        )
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store save_payout", otel.kind = "client", db.system = B::SYSTEM))]
    async fn save_payout(
        &self,
        account: &str,
        payout: &ProviderPayout,
        items: &[ProviderPayoutItem],
        read_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = B::begin_write(&self.pool).await?;
        statement::<B>(&format!(
            "INSERT INTO payouts ({PAYOUT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (account, id) DO UPDATE SET amount = excluded.amount, \
               arrival_date = excluded.arrival_date, status = excluded.status, \
               read_at = excluded.read_at"
        ))
        .bind(&payout.id)
        .bind(account)
        .bind(payout.amount)
        .bind(payout.arrival_date.format("%Y-%m-%d").to_string())
        .bind(&payout.status)
        .bind(payout.created_at)
        .bind(read_at)
        .execute(&mut tx)
        .await?;
        for (chunk_at, chunk) in items.chunks(500).enumerate() {
            let mut sql = Builder::<B>::new(
                "INSERT INTO payout_items (account, payout_id, position, item_id, kind, amount, \
                 fee, net, provider_payment_id, provider_refund_id) VALUES ",
            );
            sql.push_rows(chunk.iter().enumerate().map(|(i, item)| {
                [
                    account.into(),
                    payout.id.as_str().into(),
                    ((chunk_at * 500 + i) as i64).into(),
                    item.id.as_str().into(),
                    item.kind.as_str().into(),
                    item.amount.into(),
                    item.fee.into(),
                    item.net.into(),
                    item.provider_payment_id.as_deref().into(),
                    item.provider_refund_id.as_deref().into(),
                ]
            }));
            sql.push(" ON CONFLICT DO NOTHING");
            sql.build().execute(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payouts_page", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payouts_page(
        &self,
        before: Option<(NaiveDate, String, String)>,
        limit: u32,
    ) -> Result<Vec<Payout>, StoreError> {
        let mut sql = Builder::<B>::new(format!("SELECT {PAYOUT_COLUMNS} FROM payouts"));
        if let Some((day, account, id)) = before {
            sql.push(" WHERE (arrival_date, account, id) < (")
                .push_bind(day.format("%Y-%m-%d").to_string())
                .push(", ")
                .push_bind(account)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        sql.push(" ORDER BY arrival_date DESC, account DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(payout_from_row)
            .collect()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store get_payout", otel.kind = "client", db.system = B::SYSTEM))]
    async fn get_payout(&self, account: &str, id: &str) -> Result<Option<Payout>, StoreError> {
        statement::<B>(&format!(
            "SELECT {PAYOUT_COLUMNS} FROM payouts WHERE account = $1 AND id = $2"
        ))
        .bind(account)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .map(|row| payout_from_row(&row))
        .transpose()
    }

    #[tracing::instrument(name = "store", skip_all, fields(otel.name = "store payout_lines", otel.kind = "client", db.system = B::SYSTEM))]
    async fn payout_lines(&self, account: &str, id: &str) -> Result<Vec<PayoutLine>, StoreError> {
        statement::<B>(
            "SELECT i.position, i.item_id, i.kind, i.amount, i.fee, i.net, \
               i.provider_payment_id, i.provider_refund_id, \
               p.id AS payment_id, r.id AS refund_id, b.id AS batch_id, \
               b.reference AS batch_reference, \
               l.gross AS batched \
             FROM payout_items i \
             LEFT JOIN payments p ON i.provider_payment_id IS NOT NULL \
               AND p.account = i.account AND p.provider_payment_id = i.provider_payment_id \
             LEFT JOIN refunds r ON i.provider_refund_id IS NOT NULL \
               AND r.provider_refund_id = i.provider_refund_id \
             LEFT JOIN income_batch_lines l ON l.line_id = COALESCE(r.id, p.id) \
             LEFT JOIN income_batches b ON b.id = l.batch_id \
             WHERE i.account = $1 AND i.payout_id = $2 ORDER BY i.position",
        )
        .bind(account)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PayoutLine {
                position: row.col("position")?,
                item: ProviderPayoutItem {
                    id: row.col("item_id")?,
                    kind: row.col("kind")?,
                    amount: row.col("amount")?,
                    fee: row.col("fee")?,
                    net: row.col("net")?,
                    provider_payment_id: row.col("provider_payment_id")?,
                    provider_refund_id: row.col("provider_refund_id")?,
                },
                payment_id: row.col("payment_id")?,
                refund_id: row.col("refund_id")?,
                batch_id: row.col("batch_id")?,
                batch_reference: row.col("batch_reference")?,
                batched: row.col("batched")?,
            })
        })
        .collect()
    }
}
