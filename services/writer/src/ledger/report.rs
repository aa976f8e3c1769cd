//! Reads for the API and reports: a page of items (keyset on the row id), one item, counts
//! by state, writes per day from the attempt history.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, ExprTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use uuid::Uuid;

use super::{ItemState, Ledger, LedgerItem, item};

/// Attempt outcomes that are writes ORCID accepted.
pub(crate) const WRITTEN_OUTCOMES: [&str; 3] = ["written", "adopted", "deleted"];
/// Attempt outcomes that gave an item up.
pub(crate) const FAILED_OUTCOMES: [&str; 2] = ["failed", "denied"];

/// Which items [`Ledger::list`] returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// Only this person's.
    pub person_id: Option<String>,
    /// Only items in this state.
    pub state: Option<ItemState>,
    /// Only items whose id is greater (the last id of the previous page).
    pub after: Option<Uuid>,
    /// At most this many.
    pub limit: u64,
}

/// What the writer did on one day (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DayActivity {
    /// Attempts with outcome `written`, `adopted` or `deleted`.
    pub written: u64,
    /// Attempts with outcome `failed` or `denied`.
    pub failed: u64,
}

impl Ledger {
    /// Items matching `filter`, by id (UUIDv7, so by creation).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list(&self, filter: &ItemFilter) -> Result<Vec<LedgerItem>, DbErr> {
        let mut query = item::Entity::find();
        if let Some(person_id) = &filter.person_id {
            query = query.filter(item::Column::PersonId.eq(person_id.as_str()));
        }
        if let Some(state) = filter.state {
            query = query.filter(item::Column::State.eq(state.as_str()));
        }
        if let Some(after) = filter.after {
            query = query.filter(item::Column::Id.gt(after));
        }
        query
            .order_by_asc(item::Column::Id)
            .limit(filter.limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(LedgerItem::try_from)
            .collect()
    }

    /// One item by its row id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn find(&self, id: Uuid) -> Result<Option<LedgerItem>, DbErr> {
        item::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(LedgerItem::try_from)
            .transpose()
    }

    /// How many items are in each state (states without items are absent).
    ///
    /// # Errors
    /// Database errors, or a state the writer does not know.
    pub async fn count_by_state(&self) -> Result<BTreeMap<ItemState, u64>, DbErr> {
        let rows: Vec<(String, i64)> = item::Entity::find()
            .select_only()
            .column(item::Column::State)
            .column_as(Expr::col(item::Column::Id).count(), "n")
            .group_by(item::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|(state, n)| {
                let parsed = ItemState::parse(&state).ok_or_else(|| {
                    DbErr::Custom(format!("writer_items: unknown state {state:?}"))
                })?;
                Ok((parsed, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
    }

    /// Writes and failures per day (UTC) since `since`, from the attempt history (days
    /// without any are absent). Counted by the database (one row per day and outcome), so
    /// a year of history is not loaded.
    ///
    /// # Errors
    /// Database errors, or a day the database wrote in an unexpected form.
    pub async fn activity_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<BTreeMap<NaiveDate, DayActivity>, DbErr> {
        let backend = self.db.get_database_backend();
        // The UTC day of `at` as `YYYY-MM-DD` text. SQLite stores the time as RFC 3339 text,
        // which `date()` reads (offset included) and turns into the UTC day.
        let day = match backend {
            DbBackend::Sqlite => "date(\"at\")",
            _ => "to_char(\"at\" AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        let outcomes: Vec<&str> = WRITTEN_OUTCOMES
            .iter()
            .chain(FAILED_OUTCOMES.iter())
            .copied()
            .collect();
        let placeholder = |n: usize| match backend {
            DbBackend::Postgres => format!("${n}"),
            _ => "?".to_owned(),
        };
        let list = (2..2 + outcomes.len())
            .map(placeholder)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {day} AS day, outcome, COUNT(*) AS n FROM writer_item_attempts \
             WHERE \"at\" >= {since} AND outcome IN ({list}) GROUP BY {day}, outcome",
            since = placeholder(1),
        );
        let mut values: Vec<sea_orm::Value> = vec![since.into()];
        values.extend(outcomes.iter().map(|o| sea_orm::Value::from(*o)));
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        let mut days: BTreeMap<NaiveDate, DayActivity> = BTreeMap::new();
        for row in rows {
            let text: String = row.try_get("", "day")?;
            let outcome: String = row.try_get("", "outcome")?;
            let n: i64 = row.try_get("", "n")?;
            let date = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|_| {
                DbErr::Custom(format!(
                    "writer_item_attempts: the database gave the day {text:?}, not YYYY-MM-DD"
                ))
            })?;
            let n = u64::try_from(n).unwrap_or(0);
            let entry = days.entry(date).or_default();
            if WRITTEN_OUTCOMES.contains(&outcome.as_str()) {
                entry.written += n;
            } else {
                entry.failed += n;
            }
        }
        Ok(days)
    }
}
