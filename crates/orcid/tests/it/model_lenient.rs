//! The model reads what ORCID accepts (bare or wrapped scalars, nulls, numbers as strings,
//! unknown keys and values) and writes canonical ORCID JSON.

use orcid::model::{
    Affiliation, AffiliationGroups, AffiliationSummaryEntry, AffiliationType, BulkResult,
    BulkResultEntry, BulkWorks, ContributorRole, DateError, DisambiguationSource, ErrorBody,
    ExternalId, Funding, FuzzyDate, Organization, PartialDate, PersonExternalIdentifier, PutCode,
    Record, Relationship, Section, Source, Timestamp, UnknownFields, Visibility, Work, WorkType,
};
use serde_json::{Value, json};

use crate::reference::read_sample;

fn sample_record() -> Record {
    let text = read_sample("record_3.0/samples/read_samples/record-full-3.0.json");
    serde_json::from_str(&text).unwrap()
}

fn round_trip<T>(value: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    serde_json::from_value(serde_json::to_value(value).unwrap()).unwrap()
}

#[test]
fn bare_scalars_read_like_wrapped_ones_and_are_written_wrapped() {
    let bare: Affiliation = serde_json::from_value(json!({
        "url": "https://example.com",
        "start-date": {"year": "2021", "month": 1, "day": "05"},
        "external-ids": {"external-id": [{
            "external-id-type": "doi", "external-id-value": "10.1/x",
            "external-id-url": "https://doi.org/10.1/x", "external-id-relationship": "self"
        }]},
        "organization": {"name": "Org", "address": {"city": "Oslo", "country": {"value": "NO"}}},
        "created-date": 1559916358839u64
    }))
    .unwrap();
    let wrapped: Affiliation = serde_json::from_value(json!({
        "url": {"value": "https://example.com"},
        "start-date": {"year": {"value": "2021"}, "month": {"value": "01"}, "day": {"value": "05"}},
        "external-ids": {"external-id": [{
            "external-id-type": "doi", "external-id-value": "10.1/x",
            "external-id-url": {"value": "https://doi.org/10.1/x"}, "external-id-relationship": "self"
        }]},
        "organization": {"name": "Org", "address": {"city": "Oslo", "country": "NO"}},
        "created-date": {"value": 1559916358839u64}
    }))
    .unwrap();
    assert_eq!(bare, wrapped);
    assert_eq!(bare.url.as_deref(), Some("https://example.com"));
    assert_eq!(
        bare.start_date.as_ref().and_then(FuzzyDate::valid),
        Some(PartialDate::new(2021, Some(1), Some(5)).unwrap())
    );

    let out = serde_json::to_value(&bare).unwrap();
    assert_eq!(out["url"], json!({"value": "https://example.com"}));
    assert_eq!(out["created-date"], json!({"value": 1559916358839u64}));
    assert_eq!(
        out["start-date"],
        json!({"year": {"value": "2021"}, "month": {"value": "01"}, "day": {"value": "05"}})
    );
    assert_eq!(
        out["external-ids"]["external-id"][0]["external-id-url"],
        json!({"value": "https://doi.org/10.1/x"})
    );
    // Organization address parts are bare strings in ORCID's JSON.
    assert_eq!(out["organization"]["address"]["country"], json!("NO"));
}

#[test]
fn explicit_nulls_read_as_absent_and_are_not_written() {
    let work: Work = serde_json::from_value(json!({
        "created-date": null, "last-modified-date": null, "source": null, "put-code": null,
        "path": null,
        "title": {"title": {"value": "T"}, "subtitle": null, "translated-title": null},
        "journal-title": {"value": null}, "short-description": null, "citation": null,
        "type": null, "publication-date": null,
        "external-ids": {"external-id": null}, "url": null,
        "contributors": {"contributor": [{
            "contributor-orcid": null, "credit-name": null, "contributor-email": null,
            "contributor-attributes": {"contributor-sequence": null, "contributor-role": null}
        }]},
        "language-code": null, "country": null, "visibility": null
    }))
    .unwrap();
    assert_eq!(work.title_text(), Some("T"));
    assert_eq!(work.journal_title, None);
    assert!(work.external_ids.as_ref().unwrap().is_empty());
    assert_eq!(work.work_type, None);

    let out = serde_json::to_value(&work).unwrap();
    assert_eq!(
        out,
        json!({
            "title": {"title": {"value": "T"}},
            "external-ids": {"external-id": []},
            "contributors": {"contributor": [{"contributor-attributes": {}}]}
        })
    );

    let source: Source = serde_json::from_value(json!({
        "source-orcid": null, "source-client-id": null, "source-name": null,
        "assertion-origin-orcid": null, "assertion-origin-client-id": null,
        "assertion-origin-name": null
    }))
    .unwrap();
    assert_eq!(source, Source::default());
    assert_eq!(source.client_id(), None);
}

#[test]
fn numbers_given_as_strings_are_read() {
    let summary: AffiliationGroups = serde_json::from_value(json!({
        "last-modified-date": {"value": "1559916358839"},
        "affiliation-group": [{
            "summaries": [{"employment-summary": {
                "put-code": "9266", "display-index": 3, "created-date": {"value": "17"}
            }}]
        }]
    }))
    .unwrap();
    assert_eq!(
        summary.last_modified_date,
        Some(Timestamp(1_559_916_358_839))
    );
    let first = summary.summaries().next().unwrap();
    assert_eq!(first.put_code, Some(PutCode(9266)));
    assert_eq!(first.display_index, Some(3));
    assert_eq!(first.created_date, Some(Timestamp(17)));

    // Written canonically: put-code a number, activity display-index a string.
    let out = serde_json::to_value(first).unwrap();
    assert_eq!(out["put-code"], json!(9266));
    assert_eq!(out["display-index"], json!("3"));

    // Person items carry display-index as an integer; a string is read too.
    let ext: PersonExternalIdentifier = serde_json::from_value(json!({
        "external-id-type": "Scopus Author ID", "external-id-value": "1",
        "put-code": 3995, "display-index": "0"
    }))
    .unwrap();
    assert_eq!(ext.display_index, Some(0));
    assert_eq!(
        serde_json::to_value(&ext).unwrap()["display-index"],
        json!(0)
    );

    // Amounts may come as numbers; they are kept as text so nothing is rounded.
    let funding: Funding =
        serde_json::from_value(json!({"amount": {"value": 1000.5, "currency-code": "EUR"}}))
            .unwrap();
    assert_eq!(funding.amount.unwrap().value.as_deref(), Some("1000.5"));

    // A number field holding something that is not a number is an error, not a guess.
    assert!(serde_json::from_value::<Work>(json!({"put-code": "12a"})).is_err());
}

#[test]
fn an_error_body_with_codes_as_strings_is_read() {
    let body: ErrorBody = serde_json::from_value(json!({
        "response-code": "409",
        "developer-message": "409 Conflict: You have already added this activity",
        "user-message": "There was an error",
        "error-code": "9021",
        "more-info": "https://members.orcid.org/api/resources/troubleshooting",
        "timestamp": "from a newer ORCID"
    }))
    .unwrap();
    assert_eq!(body.response_code, Some(409));
    assert_eq!(body.error_code, Some(9021));
    assert_eq!(
        body.message(),
        "409 Conflict: You have already added this activity"
    );
    let out = serde_json::to_value(&body).unwrap();
    assert_eq!(out["error-code"], json!(9021));
    assert_eq!(out["response-code"], json!(409));
    assert_eq!(out["timestamp"], json!("from a newer ORCID"));
}

#[test]
fn unknown_keys_at_every_depth_are_kept_and_written_back() {
    let input = json!({
        "top-level-new": {"nested": [1, 2]},
        "source": {
            "source-client-id": {"uri": "u", "path": "APP-1", "host": "h", "client-new": 1},
            "source-new": "s"
        },
        "organization": {
            "name": "Org", "org-new": true,
            "address": {"city": "C", "country": "US", "address-new": "a"},
            "disambiguated-organization": {
                "disambiguated-organization-identifier": "https://ror.org/1",
                "disambiguation-source": "ROR", "dis-new": null
            }
        },
        "external-ids": {"external-id": [{
            "external-id-type": "doi", "external-id-value": "v", "id-new": {"x": "y"}
        }], "list-new": 5}
    });
    let (affiliation, unknown) =
        UnknownFields::observe(|| serde_json::from_value::<Affiliation>(input.clone()).unwrap());
    assert_eq!(
        affiliation.extra["top-level-new"],
        json!({"nested": [1, 2]})
    );
    assert_eq!(
        affiliation.source.as_ref().unwrap().client_id(),
        Some("APP-1")
    );
    let mut unknown = unknown;
    unknown.sort();
    assert_eq!(
        unknown,
        [
            "address-new",
            "client-new",
            "dis-new",
            "id-new",
            "list-new",
            "org-new",
            "source-new",
            "top-level-new"
        ]
    );
    // Everything comes back out (a null stays a null).
    assert_eq!(serde_json::to_value(&affiliation).unwrap(), input);
    assert_eq!(round_trip(&affiliation), affiliation);

    // Inside a date and beside "value" there is nowhere to keep a key: it is dropped, but
    // reported.
    let (affiliation, mut dropped) = UnknownFields::observe(|| {
        serde_json::from_value::<Affiliation>(json!({
            "start-date": {"year": {"value": "2021"}, "era": "CE"},
            "url": {"value": "https://example.com", "lang": "en"}
        }))
        .unwrap()
    });
    dropped.sort();
    assert_eq!(dropped, ["era", "lang"]);
    assert_eq!(
        serde_json::to_value(&affiliation).unwrap(),
        json!({"start-date": {"year": {"value": "2021"}}, "url": {"value": "https://example.com"}})
    );
}

#[test]
fn an_unknown_summary_key_in_an_affiliation_group_is_kept() {
    let input = json!({"affiliation-group": [{"summaries": [
        {"employment-summary": {"put-code": 1}},
        {"award-summary": {"put-code": 2}}
    ]}]});
    let (groups, unknown) = UnknownFields::observe(|| {
        serde_json::from_value::<AffiliationGroups>(input.clone()).unwrap()
    });
    assert_eq!(unknown, ["award-summary"]);
    let entries = &groups.affiliation_group[0].summaries;
    assert!(matches!(entries[1], AffiliationSummaryEntry::Unknown(_)));
    assert_eq!(groups.put_codes(), [PutCode(1)]);
    assert_eq!(serde_json::to_value(&groups).unwrap(), input);
}

#[test]
fn unknown_enum_values_are_kept_verbatim() {
    let work: Work = serde_json::from_value(json!({
        "type": "hologram",
        "visibility": "friends-only",
        "external-ids": {"external-id": [{
            "external-id-type": "doi", "external-id-value": "v",
            "external-id-relationship": "cites"
        }]},
        "contributors": {"contributor": [{"contributor-attributes": {
            "contributor-role": "http://credit.niso.org/contributor-roles/new-role/"
        }}]}
    }))
    .unwrap();
    assert_eq!(work.work_type, Some(WorkType::Other("hologram".to_owned())));
    assert_eq!(
        work.visibility,
        Some(Visibility::Other("friends-only".to_owned()))
    );
    let id = &work.external_ids.as_ref().unwrap().external_id[0];
    assert_eq!(
        id.relationship,
        Some(Relationship::Other("cites".to_owned()))
    );
    assert!(!id.relationship.as_ref().unwrap().is_known());
    let out = serde_json::to_value(&work).unwrap();
    assert_eq!(out["type"], json!("hologram"));
    assert_eq!(out["visibility"], json!("friends-only"));
    assert_eq!(
        out["external-ids"]["external-id"][0]["external-id-relationship"],
        json!("cites")
    );

    let org: Organization = serde_json::from_value(json!({
        "disambiguated-organization": {"disambiguation-source": "WIKIDATA"}
    }))
    .unwrap();
    assert_eq!(
        org.disambiguated_organization.unwrap().source,
        Some(DisambiguationSource::Other("WIKIDATA".to_owned()))
    );

    // Known values parse to their variants.
    assert_eq!(
        Visibility::parse("registered-only"),
        Visibility::RegisteredOnly
    );
    assert_eq!(
        ContributorRole::parse("http://credit.niso.org/contributor-roles/software/"),
        ContributorRole::CreditSoftware
    );
    assert_eq!(WorkType::parse("other"), WorkType::OtherWork);
}

#[test]
fn a_bulk_answer_mixing_works_and_errors_is_read_in_order() {
    let input = json!({"bulk": [
        {"work": {"put-code": 11, "title": {"title": {"value": "A"}}, "type": "book"}},
        {"error": {"response-code": 409, "developer-message": "duplicate",
                   "error-code": "9021"}},
        {"work": {"put-code": "12", "title": {"title": "B"}, "type": "journal-article"}},
        {"something-new": {}}
    ]});
    let result: BulkResult = serde_json::from_value(input).unwrap();
    assert_eq!(result.bulk.len(), 4);
    let works: Vec<(usize, Option<&str>)> =
        result.works().map(|(i, w)| (i, w.title_text())).collect();
    assert_eq!(works, [(0, Some("A")), (2, Some("B"))]);
    let errors: Vec<(usize, Option<u32>)> =
        result.errors().map(|(i, e)| (i, e.error_code)).collect();
    assert_eq!(errors, [(1, Some(9021))]);
    assert!(matches!(result.bulk[3], BulkResultEntry::Unknown(_)));
    assert_eq!(
        result.put_codes(),
        [Some(PutCode(11)), None, Some(PutCode(12)), None]
    );
    assert_eq!(round_trip(&result), result);
}

#[test]
fn the_bulk_write_body_wraps_each_work() {
    let works = (1..=2).map(|i| {
        Work::new(
            format!("Work {i}"),
            WorkType::JournalArticle,
            ExternalId::self_id("doi", format!("10.5555/{i}")),
        )
    });
    let body = BulkWorks::new(works);
    assert_eq!(
        serde_json::to_value(&body).unwrap(),
        json!({"bulk": [
            {"work": {"title": {"title": {"value": "Work 1"}}, "type": "journal-article",
                      "external-ids": {"external-id": [{"external-id-type": "doi",
                      "external-id-value": "10.5555/1", "external-id-relationship": "self"}]}}},
            {"work": {"title": {"title": {"value": "Work 2"}}, "type": "journal-article",
                      "external-ids": {"external-id": [{"external-id-type": "doi",
                      "external-id-value": "10.5555/2", "external-id-relationship": "self"}]}}}
        ]})
    );
}

/// §3.3 of the reference, byte for byte (keys in ORCID's order).
#[test]
fn a_built_employment_serializes_to_the_canonical_write_body() {
    let employment = Affiliation::new(Organization::new(
        "Boston University",
        "Boston",
        Some("Massachusetts".to_owned()),
        "US",
        DisambiguationSource::Ror,
        "https://ror.org/05qwgg493",
    ))
    .with_department("Primary Care Health Services")
    .with_role("Role")
    .with_start(PartialDate::new(2021, Some(1), Some(1)).unwrap())
    .with_end(PartialDate::new(2023, Some(1), Some(1)).unwrap())
    .with_url("https://example.com")
    .with_external_id(
        ExternalId::self_id("grant_number", "external-identifier-value")
            .with_url("http://tempuri.org"),
    );
    let expected: Value = serde_json::from_str(
        r#"{
  "department-name": "Primary Care Health Services",
  "role-title": "Role",
  "start-date": {"year":{"value":"2021"},"month":{"value":"01"},"day":{"value":"01"}},
  "end-date":   {"year":{"value":"2023"},"month":{"value":"01"},"day":{"value":"01"}},
  "organization": {
    "name": "Boston University",
    "address": {"city":"Boston","region":"Massachusetts","country":"US"},
    "disambiguated-organization": {
      "disambiguated-organization-identifier": "https://ror.org/05qwgg493",
      "disambiguation-source": "ROR"
    }
  },
  "url": {"value": "https://example.com"},
  "external-ids": {"external-id": [
    {"external-id-type":"grant_number","external-id-value":"external-identifier-value",
     "external-id-url":{"value":"http://tempuri.org"},"external-id-relationship":"self"}
  ]}
}"#,
    )
    .unwrap();
    // Compared as text, so key order and every wrapper count.
    assert_eq!(
        serde_json::to_string(&employment).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );

    // For a PUT the put code goes in, as a number, right after the server-set keys.
    let put = serde_json::to_value(employment.with_put_code(PutCode(9266))).unwrap();
    assert_eq!(put["put-code"], json!(9266));
    assert_eq!(put.as_object().unwrap().keys().next().unwrap(), "put-code");
}

#[test]
fn partial_dates_are_checked_on_construction() {
    assert!(PartialDate::new(2024, Some(2), Some(29)).is_ok());
    assert!(PartialDate::new(2000, Some(2), Some(29)).is_ok());
    assert_eq!(
        PartialDate::new(1900, Some(2), Some(29)),
        Err(DateError::Day {
            year: 1900,
            month: 2,
            day: 29
        })
    );
    assert_eq!(
        PartialDate::new(2021, Some(4), Some(31)),
        Err(DateError::Day {
            year: 2021,
            month: 4,
            day: 31
        })
    );
    assert_eq!(
        PartialDate::new(2021, Some(13), None),
        Err(DateError::Month(13))
    );
    assert_eq!(
        PartialDate::new(2021, Some(0), None),
        Err(DateError::Month(0))
    );
    assert_eq!(
        PartialDate::new(2021, None, Some(1)),
        Err(DateError::DayWithoutMonth)
    );
    assert_eq!(
        PartialDate::new(2021, Some(1), Some(0)).unwrap_err(),
        DateError::Day {
            year: 2021,
            month: 1,
            day: 0
        }
    );
    assert_eq!(PartialDate::new(999, None, None), Err(DateError::Year(999)));
    assert_eq!(
        PartialDate::new(10000, None, None),
        Err(DateError::Year(10000))
    );

    let d: PartialDate = "2021-03".parse().unwrap();
    assert_eq!((d.year(), d.month(), d.day()), (2021, Some(3), None));
    assert_eq!(d.to_string(), "2021-03");
    assert_eq!(
        serde_json::to_value(d).unwrap(),
        json!({"year": {"value": "2021"}, "month": {"value": "03"}})
    );
    assert!("2021-3".parse::<PartialDate>().is_err());
    assert!("21".parse::<PartialDate>().is_err());
}

#[test]
fn a_read_date_that_is_not_real_still_parses_and_round_trips_verbatim() {
    for raw in [
        json!({"year": {"value": "2021"}, "month": {"value": "02"}, "day": {"value": "30"}}),
        json!({"year": {"value": "21"}}),
        json!({"year": {"value": "2021"}, "day": {"value": "05"}}),
        json!({"month": {"value": "05"}}),
        json!({"year": {"value": "2021"}, "month": {"value": "1"}}),
    ] {
        let date: FuzzyDate = serde_json::from_value(raw.clone()).unwrap();
        assert!(
            matches!(date, FuzzyDate::Invalid(_)),
            "{raw} should be invalid"
        );
        assert_eq!(date.valid(), None);
        assert_eq!(serde_json::to_value(&date).unwrap(), raw);
    }
    // The strict reader refuses it.
    assert!(
        serde_json::from_value::<PartialDate>(json!({"year": {"value": "2021"},
            "month": {"value": "02"}, "day": {"value": "30"}}))
        .is_err()
    );
}

#[test]
fn affiliation_types_know_their_path_segments_and_keys() {
    let expected = [
        (
            AffiliationType::Employment,
            "employment",
            "employments",
            "employment-summary",
        ),
        (
            AffiliationType::Education,
            "education",
            "educations",
            "education-summary",
        ),
        (
            AffiliationType::Qualification,
            "qualification",
            "qualifications",
            "qualification-summary",
        ),
        (
            AffiliationType::InvitedPosition,
            "invited-position",
            "invited-positions",
            "invited-position-summary",
        ),
        (
            AffiliationType::Distinction,
            "distinction",
            "distinctions",
            "distinction-summary",
        ),
        (
            AffiliationType::Membership,
            "membership",
            "memberships",
            "membership-summary",
        ),
        (
            AffiliationType::Service,
            "service",
            "services",
            "service-summary",
        ),
    ];
    assert_eq!(AffiliationType::ALL.len(), expected.len());
    for (t, path, listing, key) in expected {
        assert!(AffiliationType::ALL.contains(&t));
        assert_eq!(t.path_segment(), path);
        assert_eq!(t.listing_segment(), listing);
        assert_eq!(t.summary_key(), key);
        assert_eq!(path.parse::<AffiliationType>().unwrap(), t);
        assert_eq!(AffiliationType::from_listing_segment(listing), Some(t));
        assert_eq!(AffiliationType::from_summary_key(key), Some(t));
        assert_eq!(Section::from(t).list_segment(), listing);
        assert_eq!(Section::from(t).item_segment(), path);
    }
    assert!("award".parse::<AffiliationType>().is_err());
}

/// The put codes the accessors return are exactly those in the document.
#[test]
fn activities_summary_lists_each_sections_put_codes() {
    let record = sample_record();
    let raw: Value = serde_json::to_value(&record).unwrap();
    let activities = record.activities_summary.as_ref().unwrap();

    let codes_in = |section: &Value, pointer_to_items: &dyn Fn(&Value) -> Vec<Value>| {
        pointer_to_items(section)
            .iter()
            .map(|item| PutCode(item["put-code"].as_u64().unwrap()))
            .collect::<Vec<_>>()
    };
    let a = &raw["activities-summary"];
    for t in AffiliationType::ALL {
        let expected = codes_in(&a[t.listing_segment()], &|s| {
            s["affiliation-group"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["summaries"].as_array().unwrap().clone())
                .map(|entry| entry[t.summary_key()].clone())
                .collect()
        });
        assert!(!expected.is_empty(), "the sample has {t} items");
        assert_eq!(activities.put_codes(t.into()), expected, "{t}");
    }
    let flat = |key: &'static str| {
        move |s: &Value| -> Vec<Value> {
            s["group"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g[key].as_array().unwrap().clone())
                .collect()
        }
    };
    let works = codes_in(&a["works"], &flat("work-summary"));
    assert!(!works.is_empty());
    assert_eq!(activities.put_codes(Section::Work), works);
    assert_eq!(
        activities.put_codes(Section::Funding),
        codes_in(&a["fundings"], &flat("funding-summary"))
    );
    assert_eq!(
        activities.put_codes(Section::ResearchResource),
        codes_in(&a["research-resources"], &flat("research-resource-summary"))
    );
    let reviews = codes_in(&a["peer-reviews"], &|s| {
        s["group"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["peer-review-group"].as_array().unwrap().clone())
            .flat_map(|g| g["peer-review-summary"].as_array().unwrap().clone())
            .collect()
    });
    assert!(!reviews.is_empty());
    assert_eq!(activities.put_codes(Section::PeerReview), reviews);
    // Person sections are not activities: nothing to list here.
    assert!(activities.put_codes(Section::Keywords).is_empty());
}

#[test]
fn the_sample_record_exposes_name_sources_and_normalized_ids() {
    let record = sample_record();
    let person = record.person.as_ref().unwrap();
    assert_eq!(
        person.display_name().as_deref(),
        Some("Three releasecandidate1")
    );
    assert_eq!(
        record
            .orcid_identifier
            .as_ref()
            .unwrap()
            .id()
            .unwrap()
            .verify()
            .unwrap()
            .to_string(),
        "0000-0002-7319-2192"
    );

    let activities = record.activities_summary.as_ref().unwrap();
    let employments = activities
        .affiliations(AffiliationType::Employment)
        .unwrap();
    let clients: Vec<&str> = employments
        .summaries()
        .filter_map(|s| s.source.as_ref()?.client_id())
        .collect();
    assert!(clients.contains(&"APP-OQYKBIN9CXD9U3SH"), "{clients:?}");

    // Works carry the read-only normalized value, or the normalization error.
    let ids: Vec<&ExternalId> = activities
        .works
        .as_ref()
        .unwrap()
        .summaries()
        .flat_map(|w| w.external_ids.iter().flat_map(|ids| ids.iter()))
        .collect();
    assert!(ids.iter().any(|id| id.normalized.is_some()));
    let failed = ids.iter().find(|id| id.normalized_error.is_some()).unwrap();
    assert_eq!(
        failed
            .normalized_error
            .as_ref()
            .unwrap()
            .error_code
            .as_deref(),
        Some("8001")
    );
}

#[test]
fn a_read_item_becomes_a_write_body_without_server_fields() {
    let record = sample_record();
    let summary = record
        .activities_summary
        .unwrap()
        .employments
        .unwrap()
        .summaries()
        .next()
        .unwrap()
        .clone();
    let put_code = summary.put_code.unwrap();
    let body = summary.into_write_body();
    let out = serde_json::to_value(&body).unwrap();
    for gone in [
        "created-date",
        "last-modified-date",
        "source",
        "path",
        "display-index",
    ] {
        assert!(out.get(gone).is_none(), "{gone} should be dropped");
    }
    assert_eq!(out["put-code"], json!(put_code.get()));
    assert!(out.get("organization").is_some());
}

#[test]
fn a_read_funding_becomes_a_write_body_without_server_fields() {
    let read: Funding = serde_json::from_value(json!({
        "created-date": {"value": 1_487_783_344_822_u64},
        "last-modified-date": {"value": 1_487_783_344_822_u64},
        "source": {"source-client-id": {"path": "APP-TEST000000000001"}},
        "put-code": 4413,
        "path": "/0000-0002-1825-0097/funding/4413",
        "type": "grant",
        "title": {"title": {"value": "A grant"}},
        "visibility": "public",
        "x-future-key": true,
    }))
    .unwrap();
    let out = serde_json::to_value(read.into_write_body()).unwrap();
    for gone in ["created-date", "last-modified-date", "source", "path"] {
        assert!(out.get(gone).is_none(), "{gone} should be dropped: {out}");
    }
    assert_eq!(out["put-code"], json!(4413));
    assert_eq!(out["type"], json!("grant"));
    assert_eq!(out["visibility"], json!("public"));
    assert_eq!(out["x-future-key"], json!(true), "unknown keys are kept");
}

#[test]
fn external_id_helpers() {
    let id = ExternalId::self_id("doi", "10.1/ABC").with_url("https://doi.org/10.1/ABC");
    assert!(id.is_self());
    assert_eq!(id.comparable_value(), "10.1/ABC");
    assert_eq!(
        serde_json::to_value(&id).unwrap(),
        json!({"external-id-type": "doi", "external-id-value": "10.1/ABC",
               "external-id-url": {"value": "https://doi.org/10.1/ABC"},
               "external-id-relationship": "self"})
    );
    let read: ExternalId = serde_json::from_value(json!({
        "external-id-type": "doi", "external-id-value": "10.1/ABC",
        "external-id-normalized": {"value": "10.1/abc", "transient": true},
        "external-id-relationship": "version-of"
    }))
    .unwrap();
    assert_eq!(read.comparable_value(), "10.1/abc");
    assert_eq!(read.relationship, Some(Relationship::VersionOf));
    assert!(!read.is_self());
}

#[test]
fn put_codes_parse_from_location_segments() {
    assert_eq!("733536".parse::<PutCode>().unwrap(), PutCode(733_536));
    assert!("abc".parse::<PutCode>().is_err());
    assert!("-1".parse::<PutCode>().is_err());
    assert_eq!(PutCode(7).to_string(), "7");
}
