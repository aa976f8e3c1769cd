//! Step 2: bring a ledger item onto ORCID — nothing to do when ORCID has it, read before
//! posting, adopt what is ours, update in place, delete on request — and decide what each
//! ORCID failure means.

use super::*;

impl Writer {
    pub(super) async fn sync(
        &self,
        mut row: item::Model,
        cause: &Cause,
        event_id: Option<&str>,
    ) -> Result<Outcome, DbErr> {
        let state = state_of(&row);
        if state == Some(ItemState::DeletedByUser) && !self.inner.policy.recreate_deleted {
            insert_note(
                &self.inner.db,
                &row,
                event_id,
                Note::new("check", "skipped").message(
                    "the researcher deleted this item on ORCID; not written again (writer.recreate_deleted = false)",
                ),
            )
            .await?;
            return Ok(Outcome::Ack);
        }
        if is_current(&row) {
            if event_id.is_some() {
                insert_note(
                    &self.inner.db,
                    &row,
                    event_id,
                    Note::new("check", "unchanged").message("ORCID already holds this content"),
                )
                .await?;
            }
            return Ok(Outcome::Ack);
        }
        let body = Body::of(&row)?;
        let token = match self.inner.tokens.token(&row.person_id).await {
            Ok(token) => token,
            Err(e) => return self.no_token(&mut row, e, cause, event_id).await,
        };
        if self.refused_before(&row.person_id, &token) {
            return self.still_refused(&mut row, &token, cause, event_id).await;
        }
        let orcid = token.orcid.to_string();
        if row.orcid.as_deref().is_some_and(|o| o != orcid) && row.put_code.is_some() {
            // The person connected another iD: the put code belongs to the old record, where
            // the item stays, held by no row now: that section is no longer known clean.
            if let Some(old) = row.orcid.as_deref().and_then(|o| o.parse::<OrcidId>().ok()) {
                self.mark_dirty(&old, &row.section).await;
            }
            self.apply(
                &mut row,
                Change {
                    orcid: Some(orcid.clone()),
                    put_code: Some(None),
                    unwritten: true,
                    ..Change::default()
                },
                event_id,
                Note::new("token", "reconnected").message(
                    "the person is now connected with another iD; writing a new item there",
                ),
                None,
            )
            .await?;
        }
        let desired_hash = row.desired_hash.clone();
        let run = Run {
            token: &token,
            body: &body,
            desired_hash: &desired_hash,
            cause,
            event_id,
        };
        if row.delete_requested {
            return self.remove(&mut row, &run).await;
        }
        let mut step = match row.put_code.and_then(put_code_from_db) {
            Some(put_code) => Step::Update {
                put_code,
                action: ItemAction::Updated,
            },
            None => Step::Create,
        };
        let mut recreated = false;
        loop {
            step = match step {
                Step::Create => self.create_or_adopt(&mut row, &run).await?,
                Step::Update { put_code, action } => {
                    self.update(&mut row, &run, put_code, action, &mut recreated)
                        .await?
                }
                Step::Done(outcome) => return Ok(outcome),
            };
        }
    }

    async fn no_token(
        &self,
        row: &mut item::Model,
        error: TokenError,
        cause: &Cause,
        event_id: Option<&str>,
    ) -> Result<Outcome, DbErr> {
        match error {
            TokenError::NotConnected => {
                self.apply(
                    row,
                    Change {
                        state: Some(ItemState::Pending),
                        ..Change::default()
                    },
                    event_id,
                    Note::new("token", "pending").message(
                        "the person has not connected an ORCID iD; waiting for connection ready",
                    ),
                    None,
                )
                .await?;
                Ok(Outcome::Ack)
            }
            TokenError::Revoked => {
                let failure = Failure::plain("the researcher revoked the institution's access");
                let event = (state_of(row) != Some(ItemState::Revoked))
                    .then(|| {
                        self.failed_event(row, stored_orcid(row), "token-revoked", &failure, cause)
                    })
                    .transpose()?;
                self.apply(
                    row,
                    Change {
                        state: Some(ItemState::Revoked),
                        failure: Some(failure.clone()),
                        ..Change::default()
                    },
                    event_id,
                    Note::new("token", "revoked").failure(&failure),
                    event,
                )
                .await?;
                Ok(Outcome::Ack)
            }
            TokenError::Superseded(message) | TokenError::Unavailable(message) => {
                let failure = Failure::plain(format!("no token: {message}"));
                insert_note(
                    &self.inner.db,
                    row,
                    event_id,
                    Note::new("token", "retry").failure(&failure),
                )
                .await?;
                Ok(Outcome::retry(Duration::ZERO, failure.message))
            }
        }
    }

    /// No put code: read the section first and adopt our item for this appointment if it
    /// is there; otherwise post it.
    ///
    /// A row never attempted on a section known clean (no item of ours a new row could
    /// adopt; see [`super::clean`]) is posted at once: one ORCID call instead of two. What
    /// reading first would have found, ORCID's duplicate answer (9021) names, and it is
    /// adopted below.
    async fn create_or_adopt(&self, row: &mut item::Model, run: &Run<'_>) -> Result<Step, DbErr> {
        let read_first = row.attempts > 0 || !self.is_clean(&run.token.orcid, &row.section).await;
        if read_first {
            let taken = self.put_codes_taken(row, run.token.orcid).await?;
            match self.find_ours(row, run, &taken).await {
                Ok(Some(found)) => {
                    return self
                        .adopt(row, run, &found, "found on the record before posting")
                        .await;
                }
                Ok(None) => {}
                Err(e) => {
                    return self
                        .orcid_failed(row, run, "list", &e)
                        .await
                        .map(Step::Done);
                }
            }
        }
        match run
            .body
            .create(&self.inner.orcid, &run.token.access_token, &run.token.orcid)
            .await
        {
            Ok(put_code) => {
                self.written(
                    row,
                    run,
                    put_code,
                    ItemAction::Created,
                    true,
                    Note::new("create", "written").put_code(put_code),
                )
                .await
            }
            Err(e @ orcid::Error::OutcomeUnknown { .. }) => {
                let failure = Failure::orcid(&e);
                self.apply(
                    row,
                    Change {
                        orcid: Some(run.token.orcid.to_string()),
                        failure: Some(failure.clone()),
                        count_attempt: true,
                        ..Change::default()
                    },
                    run.event_id,
                    Note::new("create", "outcome-unknown").failure(&failure),
                    None,
                )
                .await?;
                // Read back at once: if ORCID did create it, adopt it now; never post twice
                // blindly.
                let taken = self.put_codes_taken(row, run.token.orcid).await?;
                match self.find_ours(row, run, &taken).await {
                    Ok(Some(found)) => {
                        self.adopt(
                            row,
                            run,
                            &found,
                            "created by the post whose answer was lost",
                        )
                        .await
                    }
                    Ok(None) => Ok(Step::Done(Outcome::retry(
                        Duration::ZERO,
                        format!(
                            "{failure}; not on the record: posting again later",
                            failure = failure.message
                        ),
                    ))),
                    Err(e) => self
                        .orcid_failed(row, run, "list", &e)
                        .await
                        .map(Step::Done),
                }
            }
            Err(e @ orcid::Error::Duplicate { .. }) => {
                let named = match &e {
                    orcid::Error::Duplicate { put_code, .. } => *put_code,
                    _ => None,
                };
                let failure = Failure::orcid(&e);
                let mut note = Note::new("create", "duplicate").failure(&failure);
                if let Some(named) = named {
                    note = note.put_code(named);
                }
                self.apply(
                    row,
                    Change {
                        orcid: Some(run.token.orcid.to_string()),
                        failure: Some(failure.clone()),
                        count_attempt: true,
                        ..Change::default()
                    },
                    run.event_id,
                    note,
                    None,
                )
                .await?;
                let taken = self.put_codes_taken(row, run.token.orcid).await?;
                // ORCID's check is per source, so the item it names is ours. It is this
                // appointment if it carries this row's `self` id, or if it carries no `self`
                // id of ours and no other ledger row of the iD holds it (the test of
                // `find_ours`); an id from the HR event colliding with another of our items
                // (another appointment, perhaps another person id on the same iD) is not.
                let found = run
                    .body
                    .list_ours(
                        &self.inner.orcid,
                        &run.token.access_token,
                        &run.token.orcid,
                        row,
                    )
                    .await
                    .map(|listed| {
                        listed.into_iter().find(|l| match named {
                            Some(named) => {
                                l.put_code == named
                                    && (l.has_row_id
                                        || (!l.has_any_of_ours && !taken.contains(&named)))
                            }
                            None => l.has_row_id,
                        })
                    });
                match found {
                    Ok(Some(found)) => {
                        self.adopt(row, run, &found, "named by ORCID's duplicate answer (9021)")
                            .await
                    }
                    Ok(None) => self
                        .orcid_failed(row, run, "create", &e)
                        .await
                        .map(Step::Done),
                    Err(list_error) => self
                        .orcid_failed(row, run, "list", &list_error)
                        .await
                        .map(Step::Done),
                }
            }
            Err(e) => self
                .orcid_failed(row, run, "create", &e)
                .await
                .map(Step::Done),
        }
    }

    /// Our item for this row in the section listing: by our `self` id, else (an item
    /// without any id of ours) by content — organization, role, department and start date
    /// for an appointment, a shared DOI or handle for a work — never one whose put code
    /// another ledger row holds.
    async fn find_ours(
        &self,
        row: &item::Model,
        run: &Run<'_>,
        taken: &[PutCode],
    ) -> Result<Option<Listed>, orcid::Error> {
        let listing_started = Utc::now();
        let listed = run
            .body
            .list_ours(
                &self.inner.orcid,
                &run.token.access_token,
                &run.token.orcid,
                row,
            )
            .await?;
        if listed.iter().all(|l| l.has_any_of_ours) {
            self.record_sections(
                &run.token.orcid,
                &[row.section.as_str()],
                clean::Basis::Listing,
                listing_started,
            )
            .await;
        }
        if let Some(found) = listed.iter().find(|l| l.has_row_id) {
            return Ok(Some(found.clone()));
        }
        Ok(listed
            .into_iter()
            .find(|l| l.same_item && !l.has_any_of_ours && !taken.contains(&l.put_code)))
    }

    /// Put codes other ledger rows hold in this section of this person or of the iD `orcid`
    /// (two person ids may be connected to one iD, and their items share its record).
    async fn put_codes_taken(
        &self,
        row: &item::Model,
        orcid: OrcidId,
    ) -> Result<Vec<PutCode>, DbErr> {
        Ok(item::Entity::find()
            .filter(
                Condition::any()
                    .add(item::Column::PersonId.eq(row.person_id.as_str()))
                    .add(item::Column::Orcid.eq(orcid.to_string())),
            )
            .filter(item::Column::Section.eq(row.section.as_str()))
            .filter(item::Column::Id.ne(row.id))
            .all(&self.inner.db)
            .await?
            .into_iter()
            .filter_map(|r| r.put_code.and_then(put_code_from_db))
            .collect())
    }

    async fn adopt(
        &self,
        row: &mut item::Model,
        run: &Run<'_>,
        found: &Listed,
        why: &str,
    ) -> Result<Step, DbErr> {
        let put_code = found.put_code;
        if found.current {
            return self
                .written(
                    row,
                    run,
                    put_code,
                    ItemAction::Created,
                    false,
                    Note::new("adopt", "written")
                        .put_code(put_code)
                        .message(format!("{why}; its content is already the desired one")),
                )
                .await;
        }
        self.apply(
            row,
            Change {
                orcid: Some(run.token.orcid.to_string()),
                put_code: Some(Some(put_code)),
                ..Change::default()
            },
            run.event_id,
            Note::new("adopt", "adopted")
                .put_code(put_code)
                .message(format!("{why}; updating its content")),
            None,
        )
        .await?;
        Ok(Step::Update {
            put_code,
            action: ItemAction::Created,
        })
    }

    /// ORCID holds the desired content under `put_code`: the item is `in_orcid` with that
    /// put code, its failure cleared, and "item written" (`action`) goes to the outbox.
    async fn written(
        &self,
        row: &mut item::Model,
        run: &Run<'_>,
        put_code: PutCode,
        action: ItemAction,
        count_attempt: bool,
        note: Note<'_>,
    ) -> Result<Step, DbErr> {
        let event = self.written_event(row, run, put_code, action)?;
        self.apply(
            row,
            Change {
                state: Some(ItemState::InOrcid),
                orcid: Some(run.token.orcid.to_string()),
                put_code: Some(Some(put_code)),
                written: Some(run.desired_hash.to_owned()),
                clear_failure: true,
                count_attempt,
                ..Change::default()
            },
            run.event_id,
            note,
            Some(event),
        )
        .await?;
        Ok(Step::Done(Outcome::Ack))
    }

    async fn update(
        &self,
        row: &mut item::Model,
        run: &Run<'_>,
        put_code: PutCode,
        action: ItemAction,
        recreated: &mut bool,
    ) -> Result<Step, DbErr> {
        match run
            .body
            .update(
                &self.inner.orcid,
                &run.token.access_token,
                &run.token.orcid,
                put_code,
            )
            .await
        {
            Ok(_) => {
                self.written(
                    row,
                    run,
                    put_code,
                    action,
                    true,
                    Note::new("update", "written").put_code(put_code),
                )
                .await
            }
            Err(e @ orcid::Error::NotFound { .. }) => {
                let failure = Failure::orcid(&e);
                if self.inner.policy.recreate_deleted && !*recreated {
                    *recreated = true;
                    self.apply(
                        row,
                        Change {
                            put_code: Some(None),
                            unwritten: true,
                            count_attempt: true,
                            ..Change::default()
                        },
                        run.event_id,
                        Note::new("update", "deleted-by-user")
                            .failure(&failure)
                            .put_code(put_code)
                            .message("the researcher deleted the item; writing it again (writer.recreate_deleted = true)"),
                        None,
                    )
                    .await?;
                    return Ok(Step::Create);
                }
                let event = self.failed_event(
                    row,
                    Some(run.token.orcid),
                    "deleted-by-user",
                    &failure,
                    run.cause,
                )?;
                self.apply(
                    row,
                    Change {
                        state: Some(ItemState::DeletedByUser),
                        failure: Some(failure.clone()),
                        count_attempt: true,
                        ..Change::default()
                    },
                    run.event_id,
                    Note::new("update", "deleted-by-user")
                        .failure(&failure)
                        .put_code(put_code)
                        .message("the researcher deleted the item on ORCID; not written again (writer.recreate_deleted = false)"),
                    Some(event),
                )
                .await?;
                Ok(Step::Done(Outcome::Ack))
            }
            Err(e) => self
                .orcid_failed(row, run, "update", &e)
                .await
                .map(Step::Done),
        }
    }

    /// The source asked for the item to go (a work deleted in the repository): delete it by
    /// its put code — or, after a crash that lost the put code, the item carrying our `self`
    /// id. Already gone (404) counts as done.
    async fn remove(&self, row: &mut item::Model, run: &Run<'_>) -> Result<Outcome, DbErr> {
        let put_code = match row.put_code.and_then(put_code_from_db) {
            Some(put_code) => Some(put_code),
            None => {
                let taken = self.put_codes_taken(row, run.token.orcid).await?;
                match self.find_ours(row, run, &taken).await {
                    Ok(found) => found.filter(|f| f.has_row_id).map(|f| f.put_code),
                    Err(e) => return self.orcid_failed(row, run, "list", &e).await,
                }
            }
        };
        let Some(put_code) = put_code else {
            self.apply(
                row,
                Change {
                    state: Some(ItemState::Deleted),
                    orcid: Some(run.token.orcid.to_string()),
                    written: Some(run.desired_hash.to_owned()),
                    clear_failure: true,
                    ..Change::default()
                },
                run.event_id,
                Note::new("delete", "deleted").message("not on the record: nothing to delete"),
                None,
            )
            .await?;
            return Ok(Outcome::Ack);
        };
        match run
            .body
            .delete(
                &self.inner.orcid,
                &run.token.access_token,
                &run.token.orcid,
                put_code,
            )
            .await
        {
            Ok(()) | Err(orcid::Error::NotFound { .. }) => {
                let event = self.written_event(row, run, put_code, ItemAction::Deleted)?;
                self.apply(
                    row,
                    Change {
                        state: Some(ItemState::Deleted),
                        orcid: Some(run.token.orcid.to_string()),
                        put_code: Some(None),
                        written: Some(run.desired_hash.to_owned()),
                        clear_failure: true,
                        count_attempt: true,
                        ..Change::default()
                    },
                    run.event_id,
                    Note::new("delete", "deleted").put_code(put_code),
                    Some(event),
                )
                .await?;
                Ok(Outcome::Ack)
            }
            Err(e) => self.orcid_failed(row, run, "delete", &e).await,
        }
    }

    /// Decides what an ORCID failure means for the item and the message.
    async fn orcid_failed(
        &self,
        row: &mut item::Model,
        run: &Run<'_>,
        action: &str,
        error: &orcid::Error,
    ) -> Result<Outcome, DbErr> {
        let failure = Failure::orcid(error);
        if error.needs_new_token() {
            return self.revoked(row, run, action, &failure).await;
        }
        let retry_after = match error {
            orcid::Error::RateLimited { retry_after, .. } => Some(retry_after.unwrap_or_default()),
            orcid::Error::OutcomeUnknown { .. } => Some(Duration::ZERO),
            e if e.is_retryable() => Some(Duration::ZERO),
            _ => None,
        };
        if let Some(after) = retry_after {
            self.apply(
                row,
                Change {
                    orcid: Some(run.token.orcid.to_string()),
                    failure: Some(failure.clone()),
                    count_attempt: true,
                    ..Change::default()
                },
                run.event_id,
                Note::new(action, "retry").failure(&failure),
                None,
            )
            .await?;
            return Ok(Outcome::retry(after, failure.message));
        }
        let (state, kind) = match error {
            orcid::Error::MissingScope { .. } => (ItemState::Denied, "scope-missing"),
            orcid::Error::NotSource { .. } => (ItemState::Denied, "not-source"),
            orcid::Error::Forbidden { .. } => (ItemState::Denied, "forbidden"),
            orcid::Error::Api { status: 403, .. } => (ItemState::Denied, "forbidden"),
            orcid::Error::Validation { .. } => (ItemState::Error, "invalid-item"),
            orcid::Error::Duplicate { .. } => (ItemState::Error, "duplicate"),
            orcid::Error::RecordDeprecated { .. } => (ItemState::Error, "record-deprecated"),
            orcid::Error::RecordDeactivated { .. } | orcid::Error::RecordLocked { .. } => {
                (ItemState::Error, "record-unavailable")
            }
            orcid::Error::NotFound { .. } => (ItemState::Error, "record-not-found"),
            _ => (ItemState::Error, "orcid-error"),
        };
        let event = self.failed_event(row, Some(run.token.orcid), kind, &failure, run.cause)?;
        let outcome = if state == ItemState::Denied {
            "denied"
        } else {
            "failed"
        };
        self.apply(
            row,
            Change {
                state: Some(state),
                orcid: Some(run.token.orcid.to_string()),
                failure: Some(failure.clone()),
                count_attempt: true,
                ..Change::default()
            },
            run.event_id,
            Note::new(action, outcome).failure(&failure),
            Some(event),
        )
        .await?;
        Ok(Outcome::park(format!("{kind}: {}", failure.message)))
    }

    /// ORCID refused the token (401): stop writing for this iD. Every item of the person is
    /// marked `revoked` and the vault is told (it ends the connection and publishes
    /// "connection lost"); nothing is retried until "connection ready".
    async fn revoked(
        &self,
        row: &mut item::Model,
        run: &Run<'_>,
        action: &str,
        failure: &Failure,
    ) -> Result<Outcome, DbErr> {
        let orcid = run.token.orcid.to_string();
        let event = self.failed_event(
            row,
            Some(run.token.orcid),
            "token-revoked",
            failure,
            run.cause,
        )?;
        let txn = self.inner.db.begin().await?;
        item::Entity::update_many()
            .col_expr(
                item::Column::State,
                Expr::value(ItemState::Revoked.as_str()),
            )
            .col_expr(
                item::Column::LastErrorStatus,
                Expr::value(failure.status.map(i32::from)),
            )
            .col_expr(
                item::Column::LastErrorCode,
                Expr::value(to_i32(failure.code)),
            )
            .col_expr(
                item::Column::LastErrorMessage,
                Expr::value(failure.message.clone()),
            )
            .col_expr(item::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(item::Column::PersonId.eq(row.person_id.as_str()))
            .filter(item::Column::State.is_not_in([
                ItemState::DeletedByUser.as_str(),
                ItemState::Deleted.as_str(),
            ]))
            .exec(&txn)
            .await?;
        let mut active = row.clone().into_active_model();
        active.orcid = Set(Some(orcid));
        active.attempts = Set(row.attempts.saturating_add(1));
        active.state = Set(ItemState::Revoked.as_str().to_owned());
        *row = active.update(&txn).await?;
        insert_note(
            &txn,
            row,
            run.event_id,
            Note::new(action, "revoked").failure(failure),
        )
        .await?;
        self.inner
            .outbox
            .record(&txn, &event)
            .await
            .map_err(bus_db)?;
        txn.commit().await?;
        self.wake_relay();
        self.remember_refused(&row.person_id, run.token);
        let reason = format!(
            "ORCID answered {} to the writer ({action})",
            failure.status.unwrap_or(401)
        );
        Ok(self
            .report_revoked(&row.person_id, run.token, &reason)
            .await)
    }

    /// The token source handed out a token ORCID already refused (401) — its report failed
    /// before. No ORCID call with it: the item stays (or becomes) `revoked` and the report
    /// is made again.
    async fn still_refused(
        &self,
        row: &mut item::Model,
        token: &PersonToken,
        cause: &Cause,
        event_id: Option<&str>,
    ) -> Result<Outcome, DbErr> {
        let failure = Failure::plain(
            "ORCID already refused this token (401); not calling ORCID with it again",
        );
        if state_of(row) == Some(ItemState::Revoked) {
            insert_note(
                &self.inner.db,
                row,
                event_id,
                Note::new("token", "revoked").failure(&failure),
            )
            .await?;
        } else {
            let event =
                self.failed_event(row, Some(token.orcid), "token-revoked", &failure, cause)?;
            self.apply(
                row,
                Change {
                    state: Some(ItemState::Revoked),
                    orcid: Some(token.orcid.to_string()),
                    failure: Some(failure.clone()),
                    ..Change::default()
                },
                event_id,
                Note::new("token", "revoked").failure(&failure),
                Some(event),
            )
            .await?;
        }
        Ok(self
            .report_revoked(
                &row.person_id,
                token,
                "ORCID answered 401 to the writer (reported again)",
            )
            .await)
    }

    /// Tells the token source that ORCID refused `token`; a report not taken is retried.
    async fn report_revoked(&self, person_id: &str, token: &PersonToken, reason: &str) -> Outcome {
        match self
            .inner
            .tokens
            .mark_revoked(person_id, token, reason)
            .await
        {
            Ok(()) => Outcome::Ack,
            Err(TokenError::Superseded(message)) => Outcome::retry(
                Duration::ZERO,
                format!("the token source holds a newer token ({message}); retrying with it"),
            ),
            Err(e) => Outcome::retry(
                Duration::ZERO,
                format!("could not report the revoked token: {e}"),
            ),
        }
    }
}
