//! What a SQL database supplies to the one store implementation: how to run a statement, bind a
//! value and read a column in its own concrete sqlx types, so the store's SQL is written once as
//! ordinary generic functions.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::query::Query;
use sqlx::{Database, Pool, QueryBuilder, Transaction};

use super::{ColumnInfo, StoreError};
use crate::domain::card_guard;

/// Where a statement runs: on any pooled connection, or inside an open transaction.
pub enum On<'e, B: Database> {
    Pool(&'e Pool<B>),
    Tx(&'e mut Transaction<'static, B>),
}

impl<'e, B: Database> From<&'e Pool<B>> for On<'e, B> {
    fn from(pool: &'e Pool<B>) -> Self {
        On::Pool(pool)
    }
}

impl<'e, B: Database> From<&'e mut Transaction<'static, B>> for On<'e, B> {
    fn from(tx: &'e mut Transaction<'static, B>) -> Self {
        On::Tx(tx)
    }
}

/// A value bound into a statement, owned so the card-number guard can read it first.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(Option<String>),
    Int(Option<i64>),
    Int32(Option<i32>),
    Bool(bool),
    Time(Option<DateTime<Utc>>),
}

impl SqlValue {
    /// Whether the value, read as the detector reads text (JSON through its escapes), holds a
    /// card number. Numbers are read as their digits; flags and times never hold one.
    pub fn holds_card_number(&self) -> bool {
        match self {
            SqlValue::Text(Some(text)) => card_guard::text_or_json_contains_card_number(text),
            SqlValue::Int(Some(n)) => card_guard::contains_card_number(&n.to_string()),
            SqlValue::Int32(Some(n)) => card_guard::contains_card_number(&n.to_string()),
            _ => false,
        }
    }
}

macro_rules! sql_value_from {
    ($variant:ident: $($from:ty => $convert:expr),* $(,)?) => {$(
        impl From<$from> for SqlValue {
            fn from(value: $from) -> Self {
                #[allow(clippy::redundant_closure_call)]
                SqlValue::$variant(($convert)(value))
            }
        }
    )*};
}

sql_value_from!(Text:
    &str => |v: &str| Some(v.to_owned()),
    String => Some,
    &String => |v: &String| Some(v.clone()),
    Option<&str> => |v: Option<&str>| v.map(str::to_owned),
    Option<String> => |v| v,
    &Option<String> => |v: &Option<String>| v.clone(),
    Option<&String> => |v: Option<&String>| v.cloned(),
);
sql_value_from!(Int: i64 => Some, &i64 => |v: &i64| Some(*v), Option<i64> => |v| v);
sql_value_from!(Int32: i32 => Some, Option<i32> => |v| v);
sql_value_from!(Time:
    DateTime<Utc> => Some,
    &DateTime<Utc> => |v: &DateTime<Utc>| Some(*v),
    Option<DateTime<Utc>> => |v| v,
);

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}

/// Which column of a row: by name, or by position.
#[derive(Debug, Clone, Copy)]
pub enum At<'a> {
    Name(&'a str),
    Index(usize),
}

/// A database row read in the few types the store uses.
pub trait ReadRow: Send + Sync {
    fn text(&self, at: At<'_>) -> Result<Option<String>, sqlx::Error>;
    fn int(&self, at: At<'_>) -> Result<Option<i64>, sqlx::Error>;
    fn int32(&self, at: At<'_>) -> Result<Option<i32>, sqlx::Error>;
    fn flag(&self, at: At<'_>) -> Result<Option<bool>, sqlx::Error>;
    fn time(&self, at: At<'_>) -> Result<Option<DateTime<Utc>>, sqlx::Error>;

    /// The named column as `T`.
    fn col<T: Column>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        Self: Sized,
    {
        T::read(self, At::Name(name))
    }

    /// The column at `index` as `T`.
    fn col_at<T: Column>(&self, index: usize) -> Result<T, sqlx::Error>
    where
        Self: Sized,
    {
        T::read(self, At::Index(index))
    }
}

/// A Rust type a column is read as.
pub trait Column: Sized {
    fn read<R: ReadRow>(row: &R, at: At<'_>) -> Result<Self, sqlx::Error>;
}

fn present<T>(value: Option<T>, at: At<'_>) -> Result<T, sqlx::Error> {
    value.ok_or_else(|| {
        sqlx::Error::Decode(format!("column {at:?} is NULL where a value was expected").into())
    })
}

macro_rules! column_as {
    ($($ty:ty => $read:ident),* $(,)?) => {$(
        impl Column for $ty {
            fn read<R: ReadRow>(row: &R, at: At<'_>) -> Result<Self, sqlx::Error> {
                present(row.$read(at)?, at)
            }
        }
        impl Column for Option<$ty> {
            fn read<R: ReadRow>(row: &R, at: At<'_>) -> Result<Self, sqlx::Error> {
                row.$read(at)
            }
        }
    )*};
}

column_as!(String => text, i64 => int, i32 => int32, bool => flag, DateTime<Utc> => time);

/// A SQL database the store runs on.
pub trait Backend: Database<Row: ReadRow> {
    /// The `db.system` of the store's spans.
    const SYSTEM: &'static str;
    /// Locks the row a statement reads until the transaction ends (empty where the write
    /// transaction already excludes others).
    const FOR_UPDATE: &'static str;
    /// Lets several servers lease different rows at once.
    const SKIP_LOCKED: &'static str;
    /// Names a row of a table without an `id` column.
    const ROW_LOCATOR: &'static str;
    /// Whether a `WITH` clause may hold an `INSERT`/`UPDATE`, so that writes to two tables
    /// take one round trip.
    const WRITES_IN_WITH: bool;
    /// The `metadata` column (a JSON object of strings) with every value replaced by
    /// `[erased]`, its keys (the CRM's field names) kept.
    const ERASED_METADATA: &'static str;

    fn bind<'q>(
        query: Query<'q, Self, Self::Arguments<'q>>,
        value: SqlValue,
    ) -> Query<'q, Self, Self::Arguments<'q>>;

    fn push_bind(builder: &mut QueryBuilder<'_, Self>, value: SqlValue);

    fn execute<'e, 'q: 'e, 'a: 'q>(
        query: Query<'q, Self, Self::Arguments<'a>>,
        on: On<'e, Self>,
    ) -> BoxFuture<'e, Result<u64, sqlx::Error>>;

    fn fetch_all<'e, 'q: 'e, 'a: 'q>(
        query: Query<'q, Self, Self::Arguments<'a>>,
        on: On<'e, Self>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;

    fn fetch_optional<'e, 'q: 'e, 'a: 'q>(
        query: Query<'q, Self, Self::Arguments<'a>>,
        on: On<'e, Self>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;

    fn fetch<'e, 'q: 'e, 'a: 'q>(
        query: Query<'q, Self, Self::Arguments<'a>>,
        pool: &'e Pool<Self>,
    ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>>;

    /// A transaction that will write: SQLite takes its write lock up front.
    fn begin_write(
        pool: &Pool<Self>,
    ) -> BoxFuture<'_, Result<Transaction<'static, Self>, sqlx::Error>>;

    fn embedded_migrations() -> Vec<i64>;

    fn run_migrations(pool: &Pool<Self>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Gives the application role `role` what the service needs and no more (PostgreSQL only).
    fn grant_application_role<'a>(
        pool: &'a Pool<Self>,
        role: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    fn schema_columns(pool: &Pool<Self>) -> BoxFuture<'_, Result<Vec<ColumnInfo>, StoreError>>;
}

/// The statement-running half of a [`Backend`], the same for every sqlx driver: written once here
/// and instantiated by each backend module.
macro_rules! run_statements_with_sqlx {
    (stored_time = $stored_time:path) => {
        fn execute<'e, 'q: 'e, 'a: 'q>(
            query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'a>>,
            on: $crate::store::backend::On<'e, Self>,
        ) -> futures_util::future::BoxFuture<'e, Result<u64, sqlx::Error>> {
            // Arguments bound for longer than the statement are good for the statement.
            let query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>> =
                query;
            Box::pin(async move {
                let done = match on {
                    $crate::store::backend::On::Pool(pool) => query.execute(pool).await?,
                    $crate::store::backend::On::Tx(tx) => query.execute(&mut **tx).await?,
                };
                Ok(done.rows_affected())
            })
        }

        fn fetch_all<'e, 'q: 'e, 'a: 'q>(
            query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'a>>,
            on: $crate::store::backend::On<'e, Self>,
        ) -> futures_util::future::BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
            // Arguments bound for longer than the statement are good for the statement.
            let query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>> =
                query;
            Box::pin(async move {
                match on {
                    $crate::store::backend::On::Pool(pool) => query.fetch_all(pool).await,
                    $crate::store::backend::On::Tx(tx) => query.fetch_all(&mut **tx).await,
                }
            })
        }

        fn fetch_optional<'e, 'q: 'e, 'a: 'q>(
            query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'a>>,
            on: $crate::store::backend::On<'e, Self>,
        ) -> futures_util::future::BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>> {
            // Arguments bound for longer than the statement are good for the statement.
            let query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>> =
                query;
            Box::pin(async move {
                match on {
                    $crate::store::backend::On::Pool(pool) => query.fetch_optional(pool).await,
                    $crate::store::backend::On::Tx(tx) => query.fetch_optional(&mut **tx).await,
                }
            })
        }

        fn fetch<'e, 'q: 'e, 'a: 'q>(
            query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'a>>,
            pool: &'e sqlx::Pool<Self>,
        ) -> futures_util::stream::BoxStream<'e, Result<Self::Row, sqlx::Error>> {
            let query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>> =
                query;
            query.fetch(pool)
        }

        fn bind<'q>(
            query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>>,
            value: $crate::store::backend::SqlValue,
        ) -> sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>> {
            use $crate::store::backend::SqlValue;
            match value {
                SqlValue::Text(v) => query.bind(v),
                SqlValue::Int(v) => query.bind(v),
                SqlValue::Int32(v) => query.bind(v),
                SqlValue::Bool(v) => query.bind(v),
                SqlValue::Time(v) => query.bind(v.map($stored_time)),
            }
        }

        fn push_bind(
            builder: &mut sqlx::QueryBuilder<'_, Self>,
            value: $crate::store::backend::SqlValue,
        ) {
            use $crate::store::backend::SqlValue;
            match value {
                SqlValue::Text(v) => builder.push_bind(v),
                SqlValue::Int(v) => builder.push_bind(v),
                SqlValue::Int32(v) => builder.push_bind(v),
                SqlValue::Bool(v) => builder.push_bind(v),
                SqlValue::Time(v) => builder.push_bind(v.map($stored_time)),
            };
        }
    };
}

/// The row-reading half of a [`Backend`], the same for every sqlx driver.
macro_rules! read_rows_with_sqlx {
    ($row:ty) => {
        impl $crate::store::backend::ReadRow for $row {
            fn text(
                &self,
                at: $crate::store::backend::At<'_>,
            ) -> Result<Option<String>, sqlx::Error> {
                read_at(self, at)
            }
            fn int(&self, at: $crate::store::backend::At<'_>) -> Result<Option<i64>, sqlx::Error> {
                read_at(self, at)
            }
            fn int32(
                &self,
                at: $crate::store::backend::At<'_>,
            ) -> Result<Option<i32>, sqlx::Error> {
                read_at(self, at)
            }
            fn flag(
                &self,
                at: $crate::store::backend::At<'_>,
            ) -> Result<Option<bool>, sqlx::Error> {
                read_at(self, at)
            }
            fn time(
                &self,
                at: $crate::store::backend::At<'_>,
            ) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
                read_at(self, at)
            }
        }

        fn read_at<T>(row: &$row, at: $crate::store::backend::At<'_>) -> Result<T, sqlx::Error>
        where
            T: for<'r> sqlx::Decode<'r, <$row as sqlx::Row>::Database>
                + sqlx::Type<<$row as sqlx::Row>::Database>,
        {
            use sqlx::Row;
            match at {
                $crate::store::backend::At::Name(name) => row.try_get(name),
                $crate::store::backend::At::Index(index) => row.try_get(index),
            }
        }
    };
}
