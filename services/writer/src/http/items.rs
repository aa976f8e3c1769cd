//! The ledger read API for the portal and reports: items (keyset pages), an item's
//! history, counts by state and writes per day.

use actix_web::{HttpResponse, web};
use chrono::{Duration, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::auth::Caller;
use super::error::ApiError;
use crate::api::{AttemptView, DayCount, ItemHistory, ItemPage, ItemView, Right, Summary};
use crate::ledger::{ItemFilter, ItemState, Ledger};

const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;
const DEFAULT_DAYS: u32 = 30;
const MAX_DAYS: u32 = 366;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    person_id: Option<String>,
    state: Option<String>,
    after: Option<String>,
    limit: Option<u64>,
}

/// `GET /api/v1/items?person_id=&state=&after=&limit=`.
pub(super) async fn list(
    caller: Caller,
    query: web::Query<ListQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ItemsRead)?;
    let query = query.into_inner();
    let state = match query
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(ItemState::parse(text).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`state` {text:?} is not one of {}",
                ItemState::ALL.map(ItemState::as_str).join(", ")
            ))
        })?),
    };
    let after = match query
        .after
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => Some(Uuid::parse_str(text).map_err(|_| {
            ApiError::BadRequest(format!(
                "`after` {text:?} is not an item id; pass the `next_after` of the previous page"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "`limit` must be 1 to {MAX_PAGE}"
        )));
    }
    let filter = ItemFilter {
        person_id: query.person_id.filter(|p| !p.is_empty()),
        state,
        after,
        limit: limit + 1,
    };
    let mut items = ledger
        .list(&filter)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let more = items.len() as u64 > limit;
    items.truncate(limit as usize);
    let next_after = if more {
        items.last().map(|i| i.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ItemPage {
        items: items.iter().map(ItemView::from).collect(),
        next_after,
    }))
}

/// `GET /api/v1/items/{id}/attempts`.
pub(super) async fn attempts(
    caller: Caller,
    path: web::Path<String>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ItemsRead)?;
    let text = path.into_inner();
    let id = Uuid::parse_str(text.trim())
        .map_err(|_| ApiError::BadRequest(format!("{text:?} is not an item id (a UUID)")))?;
    let Some(item) = ledger.find(id).await.map_err(|e| ApiError::internal(&e))? else {
        return Err(ApiError::NotFound(format!(
            "no item {id}; list items with GET /api/v1/items"
        )));
    };
    let history = ledger
        .history(id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(HttpResponse::Ok().json(ItemHistory {
        item: ItemView::from(&item),
        attempts: history.iter().map(AttemptView::from).collect(),
    }))
}

#[derive(Deserialize)]
pub(super) struct SummaryQuery {
    days: Option<u32>,
}

/// `GET /api/v1/summary?days=N` (30 by default, at most 366).
pub(super) async fn summary(
    caller: Caller,
    query: web::Query<SummaryQuery>,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Right::ItemsRead)?;
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if days == 0 || days > MAX_DAYS {
        return Err(ApiError::BadRequest(format!(
            "`days` must be 1 to {MAX_DAYS}"
        )));
    }
    let counts = ledger
        .count_by_state()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let today = Utc::now().date_naive();
    let first = today - Duration::days(i64::from(days) - 1);
    let since = first.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    let activity = ledger
        .activity_since(since)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let per_day = first
        .iter_days()
        .take(days as usize)
        .map(|day| {
            let a = activity.get(&day).copied().unwrap_or_default();
            DayCount {
                day,
                written: a.written,
                failed: a.failed,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(Summary {
        states: ItemState::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), counts.get(s).copied().unwrap_or(0)))
            .collect(),
        total: counts.values().sum(),
        days,
        per_day,
    }))
}
