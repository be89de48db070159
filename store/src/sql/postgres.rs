//! The PostgreSQL engine behind [`super::Db`]: a pool of synchronous `postgres` clients (the
//! tokio-postgres project's blocking client, used on tokio's blocking pool like SQLite), each
//! with its prepared statements; `?N` parameters become `$N`; values are bound by the type the
//! server inferred for each parameter and read back whatever integer, float or text type a
//! column has; the SQLite migrations are translated to PostgreSQL types.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};

use super::Value;
use crate::StoreError;

/// One server connection and the statements prepared on it.
pub(crate) struct PgConn {
    pub(crate) client: Client,
    statements: HashMap<String, postgres::Statement>,
}

/// A blocking client that may be dropped anywhere: closing the connection blocks, so inside a
/// tokio runtime (a store dropped by async code) the drop runs on a thread of its own.
pub(crate) struct Client(Option<postgres::Client>);

impl Client {
    pub(crate) fn connect(config: &postgres::Config) -> Result<Client, postgres::Error> {
        Ok(Client(Some(config.connect(postgres::NoTls)?)))
    }
}

impl std::ops::Deref for Client {
    type Target = postgres::Client;

    fn deref(&self) -> &postgres::Client {
        self.0
            .as_ref()
            .expect("a client is only taken when dropped")
    }
}

impl std::ops::DerefMut for Client {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0
            .as_mut()
            .expect("a client is only taken when dropped")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(client));
            }
        }
    }
}

impl PgConn {
    pub(crate) fn connect(config: &postgres::Config) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: Client::connect(config)?,
            statements: HashMap::new(),
        })
    }

    /// The prepared form of `sql` (written with `?N` parameters).
    pub(crate) fn statement(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(&placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// Runs `sql` with `params`: every row.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Value<'_>],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let stmt = self.statement(sql)?;
        check_count(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        Ok(self.client.query(&stmt, &refs)?)
    }

    /// Runs `sql` with `params`: the number of rows changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        check_count(&stmt, params)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        Ok(self.client.execute(&stmt, &refs)?)
    }
}

fn check_count(stmt: &postgres::Statement, params: &[Value<'_>]) -> Result<(), StoreError> {
    let expected = stmt.params().len();
    if expected == params.len() {
        Ok(())
    } else {
        Err(StoreError::Damaged(format!(
            "statement wants {expected} parameters, got {}",
            params.len()
        )))
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        match e.as_db_error() {
            Some(db) => StoreError::Database(format!("{} ({})", db.message(), db.code().code())),
            None => StoreError::Database(e.to_string()),
        }
    }
}

/// `sql` with SQLite's `?N` (and bare `?`) parameters spelled `$N`, outside quoted text.
pub(crate) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let (mut quoted, mut next) = (false, 1);
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                out.push('$');
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str(&next.to_string());
                    next += 1;
                } else {
                    out.push_str(&digits);
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// A migration written for SQLite, in PostgreSQL's types: 64-bit integers, identity keys,
/// double precision, bytea; `WITHOUT ROWID` dropped.
pub(crate) fn migration(sql: &str) -> String {
    let sql = sql
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace(
            "INTEGER PRIMARY KEY REFERENCES",
            "BIGINT PRIMARY KEY REFERENCES",
        )
        .replace(
            "INTEGER PRIMARY KEY",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace(") WITHOUT ROWID", ")");
    let sql = replace_word(&sql, "INTEGER", "BIGINT");
    let sql = replace_word(&sql, "REAL", "DOUBLE PRECISION");
    replace_word(&sql, "BLOB", "BYTEA")
}

/// `text` with each whole word `word` (not part of a longer identifier) replaced.
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                #[allow(clippy::cast_precision_loss)]
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to a {ty} parameter").into()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                #[allow(clippy::cast_possible_truncation)]
                Type::INT8 if f.fract() == 0.0 => (f as i64).to_sql(ty, out),
                _ => Err(format!("cannot bind a number to a {ty} parameter").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    s.to_sql(ty, out)
                }
                _ => Err(format!("cannot bind text to a {ty} parameter").into()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.to_sql(ty, out),
                _ => Err(format!("cannot bind bytes to a {ty} parameter").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

impl<'a> FromSql<'a> for Value<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Value<'a>, Box<dyn Error + Sync + Send>> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::NUMERIC => Value::Real(numeric(raw)?),
            Type::BYTEA => Value::Blob(raw),
            _ => Value::Text(<&str>::from_sql(ty, raw)?),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Value<'a>, Box<dyn Error + Sync + Send>> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A NUMERIC in PostgreSQL's binary form (sums of integer columns) as a float.
fn numeric(raw: &[u8]) -> Result<f64, Box<dyn Error + Sync + Send>> {
    let word = |i: usize| -> Result<i16, Box<dyn Error + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let (ndigits, weight, sign) = (word(0)?, word(1)?, word(2)? as u16);
    if sign == 0xC000 {
        return Err("NaN numeric".into());
    }
    let mut value = 0.0;
    for i in 0..usize::try_from(ndigits).unwrap_or(0) {
        let digit = f64::from(word(4 + i)?);
        let power = i32::from(weight) - i32::try_from(i).unwrap_or(i32::MAX);
        value += digit * 10_000f64.powi(power);
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_types_are_translated() {
        assert_eq!(
            placeholders("SELECT '?' FROM t WHERE a = ?1 AND b = ?12 OR c = ?1"),
            "SELECT '?' FROM t WHERE a = $1 AND b = $12 OR c = $1"
        );
        assert_eq!(placeholders("VALUES (?, ?)"), "VALUES ($1, $2)");
        let ddl = migration(
            "CREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n    n INTEGER NOT NULL, x REAL, \
             real_name TEXT, b BLOB\n) WITHOUT ROWID;\n\
             CREATE TABLE r (node_id INTEGER PRIMARY KEY REFERENCES t (id));",
        );
        assert!(ddl.contains("id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"));
        assert!(ddl.contains("n BIGINT NOT NULL, x DOUBLE PRECISION, real_name TEXT, b BYTEA\n);"));
        assert!(
            ddl.contains("node_id BIGINT PRIMARY KEY REFERENCES"),
            "{ddl}"
        );
    }

    #[test]
    fn numerics_decode() {
        // 12345678 = digits 1234, 5678 with weight 1.
        let raw = [0, 2, 0, 1, 0, 0, 0, 0, 0x04, 0xD2, 0x16, 0x2E];
        assert_eq!(numeric(&raw).unwrap(), 12_345_678.0);
        let negative_half = [0, 1, 0xFF, 0xFF, 0x40, 0, 0, 1, 0x13, 0x88];
        assert_eq!(numeric(&negative_half).unwrap(), -0.5);
    }
}
