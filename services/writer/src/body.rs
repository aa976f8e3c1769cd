//! What a ledger row is on ORCID — an affiliation of one of seven types, or a work — and the
//! ORCID calls for it: list our items of its section, create, update, delete.

use bus::events::Section;
use orcid::client::{AccessToken, OrcidClient};
use orcid::model::{Affiliation, AffiliationType, ExternalId, PutCode, Work};
use orcid::{Error, OrcidId};
use sea_orm::DbErr;

use crate::desired::{
    event_section, has_any_of_ours, has_self_id, same_appointment, same_content, same_work,
    self_external_id, work_self_id,
};
use crate::ledger::item;

/// The `section` the ledger stores for works.
pub(crate) const WORK_SECTION: &str = "work";

/// An ORCID section the writer keeps items in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Affiliation(AffiliationType),
    Work,
}

impl Kind {
    pub(crate) fn of(row: &item::Model) -> Result<Self, DbErr> {
        if row.section == WORK_SECTION {
            return Ok(Self::Work);
        }
        AffiliationType::from_path_segment(&row.section)
            .map(Self::Affiliation)
            .ok_or_else(|| {
                DbErr::Custom(format!(
                    "writer_items {}: unknown section {:?}",
                    row.id, row.section
                ))
            })
    }

    /// The event contracts' section.
    pub(crate) fn event_section(self) -> Section {
        match self {
            Self::Affiliation(kind) => event_section(kind),
            Self::Work => Section::Work,
        }
    }
}

/// The desired body of a row.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Affiliation(AffiliationType, Box<Affiliation>),
    Work(Box<Work>),
}

/// One of our items in the section listing.
#[derive(Clone, Debug)]
pub(crate) struct Listed {
    pub(crate) put_code: PutCode,
    /// Carries this row's `self` id.
    pub(crate) has_row_id: bool,
    /// Carries a `self` id of the writer (this row's or another's).
    pub(crate) has_any_of_ours: bool,
    /// The same appointment or output by content (for items without our id).
    pub(crate) same_item: bool,
    /// Already holds the desired content (no update needed). Work summaries lack
    /// contributors, so a work is always updated after adoption.
    pub(crate) current: bool,
}

impl Body {
    pub(crate) fn of(row: &item::Model) -> Result<Self, DbErr> {
        let bad =
            |e: serde_json::Error| DbErr::Custom(format!("writer_items {}: desired: {e}", row.id));
        Ok(match Kind::of(row)? {
            Kind::Affiliation(kind) => Self::Affiliation(
                kind,
                Box::new(serde_json::from_str(&row.desired).map_err(bad)?),
            ),
            Kind::Work => Self::Work(Box::new(serde_json::from_str(&row.desired).map_err(bad)?)),
        })
    }

    pub(crate) fn kind(&self) -> Kind {
        match self {
            Self::Affiliation(kind, _) => Kind::Affiliation(*kind),
            Self::Work(_) => Kind::Work,
        }
    }

    /// The writer's `self` id of `row` (its appointment or work).
    pub(crate) fn row_id(&self, row: &item::Model) -> ExternalId {
        match self {
            Self::Affiliation(..) => {
                self_external_id(&row.person_id, &row.item_key, row.generation)
            }
            Self::Work(_) => work_self_id(&row.person_id, &row.item_key),
        }
    }

    /// Our client's items in this body's section, with how they relate to `row`.
    pub(crate) async fn list_ours(
        &self,
        client: &OrcidClient,
        token: &AccessToken,
        orcid: &OrcidId,
        row: &item::Model,
    ) -> Result<Vec<Listed>, Error> {
        let client_id = client.client_id();
        let row_id = self.row_id(row);
        let ours = |source: Option<&orcid::model::Source>| {
            source.and_then(orcid::model::Source::client_id) == Some(client_id)
        };
        Ok(match self {
            Self::Affiliation(kind, desired) => client
                .affiliations(token, orcid, *kind)
                .await?
                .summaries()
                .filter(|s| ours(s.source.as_ref()))
                .filter_map(|s| {
                    s.put_code.map(|put_code| Listed {
                        put_code,
                        has_row_id: has_self_id(s.external_ids.as_ref(), &row_id),
                        has_any_of_ours: has_any_of_ours(s.external_ids.as_ref()),
                        same_item: same_appointment(s, desired),
                        current: same_content(s, desired),
                    })
                })
                .collect(),
            Self::Work(desired) => client
                .works(token, orcid)
                .await?
                .summaries()
                .filter(|s| ours(s.source.as_ref()))
                .filter_map(|s| {
                    s.put_code.map(|put_code| Listed {
                        put_code,
                        has_row_id: has_self_id(s.external_ids.as_ref(), &row_id),
                        has_any_of_ours: has_any_of_ours(s.external_ids.as_ref()),
                        same_item: same_work(s, desired),
                        current: false,
                    })
                })
                .collect(),
        })
    }

    /// `POST` (never repeated blindly by the client).
    pub(crate) async fn create(
        &self,
        client: &OrcidClient,
        token: &AccessToken,
        orcid: &OrcidId,
    ) -> Result<PutCode, Error> {
        match self {
            Self::Affiliation(kind, body) => {
                client.create_affiliation(token, orcid, *kind, body).await
            }
            Self::Work(body) => client.create_work(token, orcid, body).await,
        }
    }

    /// `PUT` in place.
    pub(crate) async fn update(
        &self,
        client: &OrcidClient,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
    ) -> Result<(), Error> {
        match self {
            Self::Affiliation(kind, body) => client
                .update_affiliation(
                    token,
                    orcid,
                    *kind,
                    put_code,
                    &body.clone().with_put_code(put_code),
                )
                .await
                .map(drop),
            Self::Work(body) => {
                let mut body = (**body).clone();
                body.put_code = Some(put_code);
                client
                    .update_work(token, orcid, put_code, &body)
                    .await
                    .map(drop)
            }
        }
    }

    /// `DELETE`.
    pub(crate) async fn delete(
        &self,
        client: &OrcidClient,
        token: &AccessToken,
        orcid: &OrcidId,
        put_code: PutCode,
    ) -> Result<(), Error> {
        let section = match self {
            Self::Affiliation(kind, _) => orcid::client::Section::Affiliation(*kind),
            Self::Work(_) => orcid::client::Section::Work,
        };
        client.delete(token, orcid, section, put_code).await
    }
}
