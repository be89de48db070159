//! The one door to the database engine: the store's modules write their SQL once, against
//! [`Db`] (a connection inside a transaction), and bind and read values through [`Param`] and
//! [`Row`]. SQL uses `?1`-style numbered parameters and the dialect SQLite and PostgreSQL
//! share (`INSERT .. ON CONFLICT .. DO UPDATE`, `RETURNING`, `CASE`, `COALESCE`); the few
//! engine-specific spellings are methods here ([`Db::contains`]). `postgres.rs` holds what
//! only PostgreSQL needs.

use std::cell::RefCell;
use std::ops::ControlFlow;

use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::StoreError;

pub(crate) mod postgres;

/// A connection (SQLite's or a pooled PostgreSQL one), usually inside a transaction.
pub(crate) struct Db<'a> {
    engine: Engine<'a>,
}

enum Engine<'a> {
    Sqlite(&'a rusqlite::Connection),
    /// Borrowed mutably per statement; a row closure may run statements of its own.
    Postgres(RefCell<&'a mut postgres::PgConn>),
}

/// A value bound to a `?N` parameter, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What can be bound as a parameter.
pub(crate) trait Param {
    fn value(&self) -> Value<'_>;
}

/// `params![a, b]`: the parameters of a statement, `?1` first.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::sql::Param),*] as &[&dyn $crate::sql::Param]
    };
}
pub(crate) use params;

/// One result row; columns by position.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a ::postgres::Row),
}

/// What a column can be read as.
pub(crate) trait Column: Sized {
    fn read(value: Value<'_>) -> Result<Self, String>;
}

impl<'a> Db<'a> {
    pub(crate) fn sqlite(conn: &'a rusqlite::Connection) -> Db<'a> {
        Db {
            engine: Engine::Sqlite(conn),
        }
    }

    pub(crate) fn postgres(conn: &'a mut postgres::PgConn) -> Db<'a> {
        Db {
            engine: Engine::Postgres(RefCell::new(conn)),
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, StoreError> {
        match &self.engine {
            Engine::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                bind(&mut stmt, params)?;
                Ok(stmt.raw_execute()?)
            }
            Engine::Postgres(conn) => {
                let changed = conn.borrow_mut().execute(sql, &values(params))?;
                Ok(usize::try_from(changed).unwrap_or(usize::MAX))
            }
        }
    }

    /// Runs statements without parameters, separated by `;` (migrations, test set-up).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            Engine::Postgres(conn) => Ok(conn.borrow_mut().client.batch_execute(sql)?),
        }
    }

    /// Every row of a query, each turned into a `T` by `f`.
    pub(crate) fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.scan(sql, params, |row| {
            out.push(f(row)?);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// Walks the rows of a query in order until `f` breaks (a scan that stops early).
    pub(crate) fn scan(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_>) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(conn) => {
                let mut stmt = conn.prepare_cached(sql)?;
                bind(&mut stmt, params)?;
                let mut rows = stmt.raw_query();
                while let Some(row) = rows.next()? {
                    if f(&Row::Sqlite(row))?.is_break() {
                        break;
                    }
                }
            }
            Engine::Postgres(conn) => {
                let rows = conn.borrow_mut().query(sql, &values(params))?;
                for row in &rows {
                    if f(&Row::Postgres(row))?.is_break() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// The first row of a query, if any.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut found = None;
        self.scan(sql, params, |row| {
            if let Some(f) = f.take() {
                found = Some(f(row)?);
            }
            Ok(ControlFlow::Break(()))
        })?;
        Ok(found)
    }

    /// The first row of a query that always answers one (`count(*)`, `RETURNING`).
    pub(crate) fn query_one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| StoreError::Damaged(format!("no row from {sql:?}")))
    }

    /// Whether a query answers any row.
    pub(crate) fn exists(&self, sql: &str, params: &[&dyn Param]) -> Result<bool, StoreError> {
        Ok(self.query_opt(sql, params, |_| Ok(()))?.is_some())
    }

    fn is_sqlite(&self) -> bool {
        matches!(self.engine, Engine::Sqlite(_))
    }

    /// An SQL condition: `column` starts with the text of [`Db::prefix_pattern`] bound as
    /// `pattern`, case-sensitively and using the column's index.
    pub(crate) fn starts_with(&self, column: &str, pattern: &str) -> String {
        if self.is_sqlite() {
            format!("{column} GLOB {pattern}")
        } else {
            format!("{column} LIKE {pattern}")
        }
    }

    /// The pattern [`Db::starts_with`] matches `prefix` with: its special characters taken
    /// literally.
    pub(crate) fn prefix_pattern(&self, prefix: &str) -> String {
        let (special, any): (&[(char, &str)], char) = if self.is_sqlite() {
            (&[('*', "[*]"), ('?', "[?]"), ('[', "[[]")], '*')
        } else {
            (&[('%', "\\%"), ('_', "\\_"), ('\\', "\\\\")], '%')
        };
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            match special.iter().find(|(s, _)| *s == c) {
                Some((_, escaped)) => pattern.push_str(escaped),
                None => pattern.push(c),
            }
        }
        pattern.push(any);
        pattern
    }

    /// The UTC day (`YYYY-MM-DD`) of `ms`, an SQL expression of milliseconds since the epoch.
    pub(crate) fn day_of(&self, ms: &str) -> String {
        if self.is_sqlite() {
            format!("date({ms} / 1000, 'unixepoch')")
        } else {
            format!("to_char(to_timestamp({ms} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
        }
    }

    /// ` LIMIT .. OFFSET ..`: at most `limit` rows (all when `None`) after skipping `offset`.
    pub(crate) fn page(&self, limit: Option<usize>, offset: usize) -> String {
        match limit {
            Some(l) => format!(" LIMIT {l} OFFSET {offset}"),
            None if self.is_sqlite() => format!(" LIMIT -1 OFFSET {offset}"),
            None => format!(" LIMIT ALL OFFSET {offset}"),
        }
    }
}

fn values<'p>(params: &'p [&dyn Param]) -> Vec<Value<'p>> {
    params.iter().map(|p| p.value()).collect()
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[&dyn Param]) -> Result<(), StoreError> {
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(StoreError::Damaged(format!(
            "statement wants {expected} parameters, got {}",
            params.len()
        )));
    }
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p.value())?;
    }
    Ok(())
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

impl Row<'_> {
    /// Column `index` (0-based) as a `T`.
    pub(crate) fn get<T: Column>(&self, index: usize) -> Result<T, StoreError> {
        let row = match self {
            Row::Sqlite(row) => row,
            Row::Postgres(row) => {
                let value: Value<'_> = row.try_get(index)?;
                return T::read(value)
                    .map_err(|e| StoreError::Damaged(format!("column {index}: {e}")));
            }
        };
        let value = match row.get_ref(index)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) => Value::Text(
                std::str::from_utf8(t)
                    .map_err(|e| StoreError::Damaged(format!("column {index}: {e}")))?,
            ),
            ValueRef::Blob(b) => Value::Blob(b),
        };
        T::read(value).map_err(|e| StoreError::Damaged(format!("column {index}: {e}")))
    }
}

impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

impl<T: Param + ?Sized> Param for Box<T> {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

macro_rules! integer_params {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                // Values past i64::MAX (u64 counters) saturate rather than wrap negative.
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
integer_params!(i64, i32, u32, u16, u64, usize);

impl<T: Column> Column for Option<T> {
    fn read(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            v => T::read(v).map(Some),
        }
    }
}

impl Column for String {
    fn read(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Text(s) => Ok(s.to_owned()),
            other => Err(format!("expected text, found {other:?}")),
        }
    }
}

impl Column for Vec<u8> {
    fn read(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected bytes, found {other:?}")),
        }
    }
}

impl Column for f64 {
    fn read(value: Value<'_>) -> Result<Self, String> {
        match value {
            Value::Real(f) => Ok(f),
            #[allow(clippy::cast_precision_loss)] // counters and sums, far below 2^53
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a number, found {other:?}")),
        }
    }
}

impl Column for bool {
    fn read(value: Value<'_>) -> Result<Self, String> {
        i64::read(value).map(|i| i != 0)
    }
}

macro_rules! integer_columns {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn read(value: Value<'_>) -> Result<Self, String> {
                let i = match value {
                    Value::Int(i) => i,
                    // Sums and averages of integer columns come back as numbers.
                    #[allow(clippy::cast_possible_truncation)]
                    Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
                    other => return Err(format!("expected an integer, found {other:?}")),
                };
                <$t>::try_from(i).map_err(|_| format!("{i} does not fit a {}", stringify!($t)))
            }
        }
    )*};
}
integer_columns!(i64, i32, u32, u16, u64, usize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db = Db::sqlite(&conn);
        db.batch("CREATE TABLE t (i INTEGER, f REAL, s TEXT, b BLOB, n INTEGER)")
            .unwrap();
        let none: Option<i64> = None;
        let changed = db
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)",
                params![7u32, 1.5, "text", vec![1u8, 2], none],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let row = db
            .query_one("SELECT i, f, s, b, n FROM t", params![], |r| {
                Ok((
                    r.get::<u32>(0)?,
                    r.get::<f64>(1)?,
                    r.get::<String>(2)?,
                    r.get::<Vec<u8>>(3)?,
                    r.get::<Option<i64>>(4)?,
                ))
            })
            .unwrap();
        assert_eq!(row, (7, 1.5, "text".into(), vec![1, 2], None));
        let wrong = db.query_one("SELECT s FROM t", params![], |r| r.get::<i64>(0));
        assert!(matches!(wrong, Err(StoreError::Damaged(_))), "{wrong:?}");
        let missing = db.execute("INSERT INTO t (i) VALUES (?1)", params![]);
        assert!(missing.is_err(), "a missing parameter is refused");
        assert!(db
            .exists("SELECT 1 FROM t WHERE s = ?1", params!["text"])
            .unwrap());
    }
}
