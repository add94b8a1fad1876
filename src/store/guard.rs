//! The store's card-number guard: the one way a statement is made, so every value bound into every
//! statement is read by the domain's detector first. A statement holding a card number is never
//! sent to the database: it fails with [`CardDataRefused`] (read as `StoreError::CardData`), and a
//! transaction it was part of rolls back, so nothing of the unit of work is written.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::query::Query;
use sqlx::{Database, Encode, Executor, IntoArguments, Type};

use crate::domain::card_guard;

/// What a bound value says when asked whether it holds a card number.
pub trait Scanned {
    fn holds_card_number(&self) -> bool;
}

impl Scanned for str {
    fn holds_card_number(&self) -> bool {
        card_guard::text_or_json_contains_card_number(self)
    }
}

impl Scanned for String {
    fn holds_card_number(&self) -> bool {
        self.as_str().holds_card_number()
    }
}

impl<T: Scanned + ?Sized> Scanned for &T {
    fn holds_card_number(&self) -> bool {
        (**self).holds_card_number()
    }
}

impl<T: Scanned> Scanned for Option<T> {
    fn holds_card_number(&self) -> bool {
        self.as_ref().is_some_and(Scanned::holds_card_number)
    }
}

macro_rules! scanned_as_text {
    ($($number:ty),*) => {$(
        impl Scanned for $number {
            fn holds_card_number(&self) -> bool {
                card_guard::contains_card_number(&self.to_string())
            }
        }
    )*};
}
scanned_as_text!(i64, i32, u32);

impl Scanned for bool {
    fn holds_card_number(&self) -> bool {
        false
    }
}

impl Scanned for DateTime<Utc> {
    fn holds_card_number(&self) -> bool {
        false
    }
}

/// Why a statement was not sent to the database.
#[derive(Debug, thiserror::Error)]
#[error("a value bound for the database holds a card number; the statement was not sent")]
pub struct CardDataRefused;

/// A statement that has seen every value bound into it.
pub struct Statement<'q, DB: Database, A> {
    query: Query<'q, DB, A>,
    refused: bool,
}

/// A statement of `sql`, bound through [`Statement::bind`].
pub fn statement<DB: Database>(sql: &str) -> Statement<'_, DB, DB::Arguments<'_>> {
    Statement {
        query: sqlx::query(sql),
        refused: false,
    }
}

impl<'q, DB: Database> Statement<'q, DB, DB::Arguments<'q>> {
    pub fn bind<T: 'q + Encode<'q, DB> + Type<DB> + Scanned>(mut self, value: T) -> Self {
        self.refused |= value.holds_card_number();
        self.query = self.query.bind(value);
        self
    }
}

fn refusal() -> sqlx::Error {
    sqlx::Error::Encode(Box::new(CardDataRefused))
}

impl<'q, DB: Database, A: 'q + IntoArguments<'q, DB>> Statement<'q, DB, A> {
    fn checked(self) -> Result<Query<'q, DB, A>, sqlx::Error> {
        if self.refused {
            Err(refusal())
        } else {
            Ok(self.query)
        }
    }

    pub async fn execute<'e, 'c: 'e, E>(self, executor: E) -> Result<DB::QueryResult, sqlx::Error>
    where
        'q: 'e,
        A: 'e,
        E: Executor<'c, Database = DB>,
    {
        self.checked()?.execute(executor).await
    }

    pub async fn fetch_all<'e, 'c: 'e, E>(self, executor: E) -> Result<Vec<DB::Row>, sqlx::Error>
    where
        'q: 'e,
        A: 'e,
        E: Executor<'c, Database = DB>,
    {
        self.checked()?.fetch_all(executor).await
    }

    pub async fn fetch_one<'e, 'c: 'e, E>(self, executor: E) -> Result<DB::Row, sqlx::Error>
    where
        'q: 'e,
        A: 'e,
        E: Executor<'c, Database = DB>,
    {
        self.checked()?.fetch_one(executor).await
    }

    pub async fn fetch_optional<'e, 'c: 'e, E>(
        self,
        executor: E,
    ) -> Result<Option<DB::Row>, sqlx::Error>
    where
        'q: 'e,
        A: 'e,
        E: Executor<'c, Database = DB>,
    {
        self.checked()?.fetch_optional(executor).await
    }

    pub fn fetch<'e, 'c: 'e, E>(self, executor: E) -> BoxStream<'e, Result<DB::Row, sqlx::Error>>
    where
        'q: 'e,
        A: 'e,
        E: 'e + Executor<'c, Database = DB>,
    {
        match self.checked() {
            Ok(query) => query.fetch(executor),
            Err(refused) => stream::once(async move { Err(refused) }).boxed(),
        }
    }
}

/// A statement built in pieces (optional filters, lists of ids), bound through
/// [`Builder::push_bind`].
pub struct Builder<'args, DB: Database> {
    inner: sqlx::QueryBuilder<'args, DB>,
    refused: bool,
}

impl<'args, DB: Database> Builder<'args, DB>
where
    DB::Arguments<'args>: Default,
{
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

    pub fn push_bind<T: 'args + Encode<'args, DB> + Type<DB> + Scanned>(
        &mut self,
        value: T,
    ) -> &mut Self {
        self.refused |= value.holds_card_number();
        self.inner.push_bind(value);
        self
    }

    pub fn build(&mut self) -> Statement<'_, DB, DB::Arguments<'args>> {
        Statement {
            query: self.inner.build(),
            refused: self.refused,
        }
    }
}
