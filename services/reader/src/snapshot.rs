//! Snapshots: one row per iD in `reader_snapshots` with the record's item summaries
//! (section, put code, source client, content hash, display title), never the full record.

use aws_lc_rs::digest;
use bus::events::{RecordStatus, Section};
use chrono::{DateTime, TimeZone, Utc};
use orcid::OrcidId;
use orcid::model::{ActivitiesSummary, AffiliationType, Source, Timestamp};
use sea_orm::entity::prelude::*;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbBackend, QueryOrder, QuerySelect,
    sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};

/// One item of a record as the snapshot keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotItem {
    /// Record section.
    pub section: Section,
    /// ORCID's put code.
    pub put_code: u64,
    /// The member client that wrote it (`APP-…`); `None` for the researcher's own items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_client_id: Option<String>,
    /// Hex SHA-256 of the summary as ORCID listed it, without its display index (the
    /// researcher's ordering) — so an edit of any listed field, or of the item's
    /// last-modified date, changes it.
    pub content_hash: String,
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A stored snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The iD.
    pub orcid: String,
    /// The institution's person id, when known.
    pub person_id: Option<String>,
    /// `active`, `deprecated` or `deactivated`.
    pub status: RecordStatus,
    /// For a deprecated record, its primary iD.
    pub primary_orcid: Option<String>,
    /// ORCID's last-modified date of the activities.
    pub last_modified: Option<DateTime<Utc>>,
    /// The items (for a deprecated or deactivated record: the last ones seen while active).
    pub items: Vec<SnapshotItem>,
    /// When the read that took it started (a read that started earlier is dropped).
    pub read_at: DateTime<Utc>,
    /// How many reads made it (every read counts, changed or not).
    pub read_count: i64,
}

/// The `reader_snapshots` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// One iD's latest snapshot.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "reader_snapshots")]
    pub struct Model {
        /// The iD (primary key).
        #[sea_orm(primary_key, auto_increment = false)]
        pub orcid: String,
        /// The person id.
        pub person_id: Option<String>,
        /// `active`, `deprecated`, `deactivated`.
        pub status: String,
        /// Primary iD of a deprecated record.
        pub primary_orcid: Option<String>,
        /// ORCID's last-modified date.
        pub last_modified: Option<DateTimeUtc>,
        /// JSON array of `SnapshotItem`.
        pub items: String,
        /// When the read that took it started.
        pub read_at: DateTimeUtc,
        /// Reads so far.
        pub read_count: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

fn status_str(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Active => "active",
        RecordStatus::Deprecated => "deprecated",
        RecordStatus::Deactivated => "deactivated",
    }
}

fn parse_status(text: &str) -> RecordStatus {
    match text {
        "deprecated" => RecordStatus::Deprecated,
        "deactivated" => RecordStatus::Deactivated,
        _ => RecordStatus::Active,
    }
}

impl TryFrom<entity::Model> for Snapshot {
    type Error = DbErr;
    fn try_from(m: entity::Model) -> Result<Self, DbErr> {
        let items = serde_json::from_str(&m.items).map_err(|e| {
            DbErr::Custom(format!(
                "reader_snapshots.items of {} is not a list of items: {e}",
                m.orcid
            ))
        })?;
        Ok(Snapshot {
            orcid: m.orcid,
            person_id: m.person_id,
            status: parse_status(&m.status),
            primary_orcid: m.primary_orcid,
            last_modified: m.last_modified,
            items,
            read_at: m.read_at,
            read_count: m.read_count,
        })
    }
}

/// Reads `orcid`'s snapshot on `conn`; with `for_update` (inside a transaction, PostgreSQL)
/// the row stays locked until the transaction ends.
///
/// # Errors
/// Database errors, or a stored item list that does not read.
pub async fn load<C: ConnectionTrait>(
    conn: &C,
    orcid: &str,
    for_update: bool,
) -> Result<Option<Snapshot>, DbErr> {
    let mut select = entity::Entity::find_by_id(orcid.to_owned());
    if for_update && conn.get_database_backend() == DbBackend::Postgres {
        select = select.lock_exclusive();
    }
    select.one(conn).await?.map(Snapshot::try_from).transpose()
}

/// Inserts or replaces `snapshot`.
///
/// # Errors
/// Database errors.
pub async fn save<C: ConnectionTrait>(conn: &C, snapshot: &Snapshot) -> Result<(), DbErr> {
    let items = serde_json::to_string(&snapshot.items)
        .map_err(|e| DbErr::Custom(format!("snapshot items: {e}")))?;
    let row = entity::ActiveModel {
        orcid: Set(snapshot.orcid.clone()),
        person_id: Set(snapshot.person_id.clone()),
        status: Set(status_str(snapshot.status).to_owned()),
        primary_orcid: Set(snapshot.primary_orcid.clone()),
        last_modified: Set(snapshot.last_modified),
        items: Set(items),
        read_at: Set(snapshot.read_at),
        read_count: Set(snapshot.read_count),
    };
    entity::Entity::insert(row)
        .on_conflict(
            OnConflict::column(entity::Column::Orcid)
                .update_columns([
                    entity::Column::PersonId,
                    entity::Column::Status,
                    entity::Column::PrimaryOrcid,
                    entity::Column::LastModified,
                    entity::Column::Items,
                    entity::Column::ReadAt,
                    entity::Column::ReadCount,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Reads of the snapshots (reports, tests, the sweep).
#[derive(Clone, Debug)]
pub struct Snapshots {
    db: DatabaseConnection,
}

impl Snapshots {
    /// Over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// `orcid`'s snapshot.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get(&self, orcid: &OrcidId) -> Result<Option<Snapshot>, DbErr> {
        load(&self.db, &orcid.to_string(), false).await
    }

    /// When each iD was last read, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn read_times(&self) -> Result<Vec<(String, DateTime<Utc>)>, DbErr> {
        entity::Entity::find()
            .select_only()
            .column(entity::Column::Orcid)
            .column(entity::Column::ReadAt)
            .order_by_asc(entity::Column::ReadAt)
            .into_tuple::<(String, DateTime<Utc>)>()
            .all(&self.db)
            .await
    }
}

/// A timestamp of ORCID's as a UTC time.
pub fn to_utc(ts: Timestamp) -> Option<DateTime<Utc>> {
    i64::try_from(ts.millis())
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
}

fn hash_summary<T: Serialize>(summary: &T) -> String {
    let mut value = serde_json::to_value(summary).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("display-index");
    }
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    let d = digest::digest(&digest::SHA256, &bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn client_of(source: Option<&Source>) -> Option<String> {
    source.and_then(Source::client_id).map(str::to_owned)
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn section_of(t: AffiliationType) -> Section {
    match t {
        AffiliationType::Employment => Section::Employment,
        AffiliationType::Education => Section::Education,
        AffiliationType::Qualification => Section::Qualification,
        AffiliationType::InvitedPosition => Section::InvitedPosition,
        AffiliationType::Distinction => Section::Distinction,
        AffiliationType::Membership => Section::Membership,
        AffiliationType::Service => Section::Service,
    }
}

const AFFILIATION_TYPES: [AffiliationType; 7] = [
    AffiliationType::Employment,
    AffiliationType::Education,
    AffiliationType::Qualification,
    AffiliationType::InvitedPosition,
    AffiliationType::Distinction,
    AffiliationType::Membership,
    AffiliationType::Service,
];

/// The items of the nine sections idbridge knows (seven affiliation types, works,
/// fundings) in an activities summary. Peer reviews and research resources are not kept.
pub fn items_from_activities(activities: &ActivitiesSummary) -> Vec<SnapshotItem> {
    let mut items = Vec::new();
    for t in AFFILIATION_TYPES {
        let Some(groups) = activities.affiliations(t) else {
            continue;
        };
        for summary in groups.summaries() {
            let Some(put_code) = summary.put_code else {
                continue;
            };
            let role = nonempty(summary.role_title.as_deref());
            let org = nonempty(
                summary
                    .organization
                    .as_ref()
                    .and_then(|o| o.name.as_deref()),
            );
            let title = match (role, org) {
                (Some(r), Some(o)) => Some(format!("{r}, {o}")),
                (r, o) => r.or(o),
            };
            items.push(SnapshotItem {
                section: section_of(t),
                put_code: put_code.get(),
                source_client_id: client_of(summary.source.as_ref()),
                content_hash: hash_summary(summary),
                title,
            });
        }
    }
    if let Some(works) = &activities.works {
        for summary in works.summaries() {
            let Some(put_code) = summary.put_code else {
                continue;
            };
            items.push(SnapshotItem {
                section: Section::Work,
                put_code: put_code.get(),
                source_client_id: client_of(summary.source.as_ref()),
                content_hash: hash_summary(summary),
                title: nonempty(summary.title.as_ref().and_then(|t| t.title.as_deref())),
            });
        }
    }
    if let Some(fundings) = &activities.fundings {
        for summary in fundings.summaries() {
            let Some(put_code) = summary.put_code else {
                continue;
            };
            items.push(SnapshotItem {
                section: Section::Funding,
                put_code: put_code.get(),
                source_client_id: client_of(summary.source.as_ref()),
                content_hash: hash_summary(summary),
                title: nonempty(summary.title.as_ref().and_then(|t| t.title.as_deref())),
            });
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_index_does_not_change_the_hash_but_content_does() {
        let a: orcid::model::WorkSummary = serde_json::from_value(serde_json::json!({
            "put-code": 5, "title": {"title": {"value": "Rivers"}}, "display-index": "1"
        }))
        .unwrap();
        let mut b = a.clone();
        b.display_index = Some(7);
        assert_eq!(hash_summary(&a), hash_summary(&b));
        let mut c = a.clone();
        c.journal_title = Some("Hydrology".into());
        assert_ne!(hash_summary(&a), hash_summary(&c));
    }
}
