//! What the database did for a round, from PostgreSQL's cumulative statistics: commits, and
//! rows inserted, updated and deleted per table. Read before the round's first publish and
//! again after the services idled, so it counts everything the round caused (the reads
//! after webhooks included). PostgreSQL flushes a backend's statistics at most once a
//! second, so the second reading waits for the idle period.

use std::collections::BTreeMap;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Commits of the database, and `(inserted, updated, deleted)` per table.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub commits: i64,
    pub tables: BTreeMap<String, (i64, i64, i64)>,
}

/// The statistics now.
pub async fn read(db: &DatabaseConnection) -> anyhow::Result<Counts> {
    let commits = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    let mut tables = BTreeMap::new();
    for row in db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT relname::text AS t, n_tup_ins AS i, n_tup_upd AS u, n_tup_del AS d \
             FROM pg_stat_user_tables",
        ))
        .await?
    {
        tables.insert(
            row.try_get::<String>("", "t")?,
            (
                row.try_get::<i64>("", "i")?,
                row.try_get::<i64>("", "u")?,
                row.try_get::<i64>("", "d")?,
            ),
        );
    }
    Ok(Counts { commits, tables })
}

impl Counts {
    /// What changed from `earlier` to `self`, tables with any change only.
    pub fn since(&self, earlier: &Counts) -> Counts {
        let tables = self
            .tables
            .iter()
            .filter_map(|(name, (i, u, d))| {
                let (i0, u0, d0) = earlier.tables.get(name).copied().unwrap_or_default();
                let delta = (i - i0, u - u0, d - d0);
                (delta != (0, 0, 0)).then(|| (name.clone(), delta))
            })
            .collect();
        Counts {
            commits: self.commits - earlier.commits,
            tables,
        }
    }

    /// Prints the counts per event.
    pub fn print(&self, events: usize) {
        let per = |n: i64| n as f64 / events.max(1) as f64;
        println!(
            "  database, everything the round caused (read after the services idled): {} commits = {:.1} per event",
            self.commits,
            per(self.commits)
        );
        for (table, (i, u, d)) in &self.tables {
            println!(
                "    {table:<34} per event: {:>5.2} inserted {:>5.2} updated {:>5.2} deleted",
                per(*i),
                per(*u),
                per(*d)
            );
        }
    }
}
