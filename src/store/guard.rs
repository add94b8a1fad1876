//! The store's card-number guard: the one way a statement is made, so every value bound into every
//! statement is read by the domain's detector first. A statement holding a card number is never
//! sent to the database: it fails with [`CardDataRefused`] (read as `StoreError::CardData`), and a
//! transaction it was part of rolls back, so nothing of the unit of work is written.

use std::fmt::Display;

use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::query::Query;

use super::backend::{Backend, On, SqlValue};

/// Why a statement was not sent to the database.
#[derive(Debug, thiserror::Error)]
#[error("a value bound for the database holds a card number; the statement was not sent")]
pub struct CardDataRefused;

/// A statement that has seen every value bound into it.
pub struct Statement<'q, 'a, B: Backend> {
    query: Query<'q, B, B::Arguments<'a>>,
    refused: bool,
}

/// A statement of `sql`, bound through [`Statement::bind`].
pub fn statement<B: Backend>(sql: &str) -> Statement<'_, '_, B> {
    Statement {
        query: sqlx::query(sql),
        refused: false,
    }
}

/// What a statement that ran changed.
pub struct Done {
    rows_affected: u64,
}

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl<'q, B: Backend> Statement<'q, 'q, B> {
    pub fn bind(mut self, value: impl Into<SqlValue>) -> Self {
        let value = value.into();
        self.refused |= value.holds_card_number();
        self.query = B::bind(self.query, value);
        self
    }
}

fn refusal() -> sqlx::Error {
    sqlx::Error::Encode(Box::new(CardDataRefused))
}

impl<'q, 'a: 'q, B: Backend> Statement<'q, 'a, B> {
    fn checked(self) -> Result<Query<'q, B, B::Arguments<'a>>, sqlx::Error> {
        if self.refused {
            Err(refusal())
        } else {
            Ok(self.query)
        }
    }

    pub async fn execute<'e>(self, on: impl Into<On<'e, B>>) -> Result<Done, sqlx::Error>
    where
        'q: 'e,
    {
        let rows_affected = B::execute(self.checked()?, on.into()).await?;
        Ok(Done { rows_affected })
    }

    pub async fn fetch_all<'e>(self, on: impl Into<On<'e, B>>) -> Result<Vec<B::Row>, sqlx::Error>
    where
        'q: 'e,
    {
        B::fetch_all(self.checked()?, on.into()).await
    }

    pub async fn fetch_one<'e>(self, on: impl Into<On<'e, B>>) -> Result<B::Row, sqlx::Error>
    where
        'q: 'e,
    {
        B::fetch_optional(self.checked()?, on.into())
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub async fn fetch_optional<'e>(
        self,
        on: impl Into<On<'e, B>>,
    ) -> Result<Option<B::Row>, sqlx::Error>
    where
        'q: 'e,
    {
        B::fetch_optional(self.checked()?, on.into()).await
    }

    /// Rows one at a time from a pooled connection, for reads of any size.
    pub fn fetch<'e>(self, pool: &'e sqlx::Pool<B>) -> BoxStream<'e, Result<B::Row, sqlx::Error>>
    where
        'q: 'e,
    {
        match self.checked() {
            Ok(query) => B::fetch(query, pool),
            Err(refused) => stream::once(async move { Err(refused) }).boxed(),
        }
    }
}

/// A statement built in pieces (optional filters, lists of ids), bound through
/// [`Builder::push_bind`].
pub struct Builder<B: Backend> {
    inner: sqlx::QueryBuilder<'static, B>,
    refused: bool,
}

impl<B: Backend> Builder<B> {
    pub fn new(init: impl Into<String>) -> Self {
        Self {
            inner: sqlx::QueryBuilder::new(init),
            refused: false,
        }
    }

    pub fn push(&mut self, sql: impl Display) -> &mut Self {
        self.inner.push(sql);
        self
    }

    pub fn push_bind(&mut self, value: impl Into<SqlValue>) -> &mut Self {
        let value = value.into();
        self.refused |= value.holds_card_number();
        B::push_bind(&mut self.inner, value);
        self
    }

    /// Rows of bound values, `(a, b), (c, d)`: the body of a multi-row `VALUES`.
    pub fn push_rows<const N: usize>(
        &mut self,
        rows: impl IntoIterator<Item = [SqlValue; N]>,
    ) -> &mut Self {
        for (r, row) in rows.into_iter().enumerate() {
            self.push(if r == 0 { "(" } else { ", (" });
            for (c, value) in row.into_iter().enumerate() {
                if c > 0 {
                    self.push(", ");
                }
                self.push_bind(value);
            }
            self.push(")");
        }
        self
    }

    pub fn build(&mut self) -> Statement<'_, 'static, B> {
        Statement {
            query: self.inner.build(),
            refused: self.refused,
        }
    }
}
