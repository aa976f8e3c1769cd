//! Works: publications, data sets, software… (§3.4).

use serde::{Deserialize, Serialize};

use super::common::{
    OrcidIdentifier, PutCode, Source, Timestamp, TranslatedTitle, UnknownFields, Visibility,
};
use super::date::FuzzyDate;
use super::external_id::{ExternalId, ExternalIds};
use super::serde_util::{self, as_text, open_enum, plain, wrapped};

open_enum! {
    /// The kind of work (v3 `WorkType`). Unknown kinds are kept in `Other`.
    WorkType {
        /// `annotation`
        Annotation = "annotation",
        /// `artistic-performance`
        ArtisticPerformance = "artistic-performance",
        /// `blog-post`
        BlogPost = "blog-post",
        /// `book-chapter`
        BookChapter = "book-chapter",
        /// `book-review`
        BookReview = "book-review",
        /// `book`
        Book = "book",
        /// `cartographic-material`
        CartographicMaterial = "cartographic-material",
        /// `clinical-study`
        ClinicalStudy = "clinical-study",
        /// `conference-abstract`
        ConferenceAbstract = "conference-abstract",
        /// `conference-output`
        ConferenceOutput = "conference-output",
        /// `conference-paper`
        ConferencePaper = "conference-paper",
        /// `conference-poster`
        ConferencePoster = "conference-poster",
        /// `conference-presentation`
        ConferencePresentation = "conference-presentation",
        /// `conference-proceedings`
        ConferenceProceedings = "conference-proceedings",
        /// `data-management-plan`
        DataManagementPlan = "data-management-plan",
        /// `data-set`
        DataSet = "data-set",
        /// `design`
        Design = "design",
        /// `dictionary-entry`
        DictionaryEntry = "dictionary-entry",
        /// `disclosure`
        Disclosure = "disclosure",
        /// `dissertation-thesis`
        DissertationThesis = "dissertation-thesis",
        /// `edited-book`
        EditedBook = "edited-book",
        /// `encyclopedia-entry`
        EncyclopediaEntry = "encyclopedia-entry",
        /// `image`
        Image = "image",
        /// `invention`
        Invention = "invention",
        /// `journal-article`
        JournalArticle = "journal-article",
        /// `journal-issue`
        JournalIssue = "journal-issue",
        /// `learning-object`
        LearningObject = "learning-object",
        /// `lecture-speech`
        LectureSpeech = "lecture-speech",
        /// `license`
        License = "license",
        /// `magazine-article`
        MagazineArticle = "magazine-article",
        /// `manual`
        Manual = "manual",
        /// `moving-image`
        MovingImage = "moving-image",
        /// `musical-composition`
        MusicalComposition = "musical-composition",
        /// `newsletter-article`
        NewsletterArticle = "newsletter-article",
        /// `newspaper-article`
        NewspaperArticle = "newspaper-article",
        /// `online-resource`
        OnlineResource = "online-resource",
        /// `other`
        OtherWork = "other",
        /// `patent`
        Patent = "patent",
        /// `physical-object`
        PhysicalObject = "physical-object",
        /// `preprint`
        Preprint = "preprint",
        /// `public-speech`
        PublicSpeech = "public-speech",
        /// `registered-copyright`
        RegisteredCopyright = "registered-copyright",
        /// `report`
        Report = "report",
        /// `research-technique`
        ResearchTechnique = "research-technique",
        /// `research-tool`
        ResearchTool = "research-tool",
        /// `review`
        Review = "review",
        /// `software`
        Software = "software",
        /// `sound`
        Sound = "sound",
        /// `spin-off-company`
        SpinOffCompany = "spin-off-company",
        /// `standards-and-policy`
        StandardsAndPolicy = "standards-and-policy",
        /// `supervised-student-publication`
        SupervisedStudentPublication = "supervised-student-publication",
        /// `technical-standard`
        TechnicalStandard = "technical-standard",
        /// `test`
        Test = "test",
        /// `trademark`
        Trademark = "trademark",
        /// `transcription`
        Transcription = "transcription",
        /// `translation`
        Translation = "translation",
        /// `website`
        Website = "website",
        /// `working-paper`
        WorkingPaper = "working-paper",
        /// `undefined`
        Undefined = "undefined",
    }
}

open_enum! {
    /// The format of a citation.
    CitationType {
        /// `formatted-unspecified`
        FormattedUnspecified = "formatted-unspecified",
        /// `bibtex`
        Bibtex = "bibtex",
        /// `formatted-apa`
        FormattedApa = "formatted-apa",
        /// `formatted-harvard`
        FormattedHarvard = "formatted-harvard",
        /// `formatted-ieee`
        FormattedIeee = "formatted-ieee",
        /// `formatted-mla`
        FormattedMla = "formatted-mla",
        /// `formatted-vancouver`
        FormattedVancouver = "formatted-vancouver",
        /// `formatted-chicago`
        FormattedChicago = "formatted-chicago",
        /// `ris`
        Ris = "ris",
    }
}

open_enum! {
    /// Whether a contributor is the first one.
    ContributorSequence {
        /// `first`
        First = "first",
        /// `additional`
        Additional = "additional",
    }
}

open_enum! {
    /// A contributor's role: ORCID's original vocabulary for works and for fundings, or a
    /// CRediT role URI (both are accepted for works and fundings).
    ContributorRole {
        /// `author` (works)
        Author = "author",
        /// `assignee` (works)
        Assignee = "assignee",
        /// `editor` (works)
        Editor = "editor",
        /// `chair-or-translator` (works)
        ChairOrTranslator = "chair-or-translator",
        /// `co-investigator` (works)
        CoInvestigator = "co-investigator",
        /// `co-inventor` (works)
        CoInventor = "co-inventor",
        /// `graduate-student` (works)
        GraduateStudent = "graduate-student",
        /// `other-inventor` (works)
        OtherInventor = "other-inventor",
        /// `principal-investigator` (works)
        PrincipalInvestigator = "principal-investigator",
        /// `postdoctoral-researcher` (works)
        PostdoctoralResearcher = "postdoctoral-researcher",
        /// `support-staff` (works)
        SupportStaff = "support-staff",
        /// `lead` (fundings)
        Lead = "lead",
        /// `co-lead` (fundings)
        CoLead = "co-lead",
        /// `supported-by` (fundings)
        SupportedBy = "supported-by",
        /// `other-contribution` (fundings)
        OtherContribution = "other-contribution",
        /// CRediT: Conceptualization
        CreditConceptualization = "http://credit.niso.org/contributor-roles/conceptualization/",
        /// CRediT: Data curation
        CreditDataCuration = "http://credit.niso.org/contributor-roles/data-curation/",
        /// CRediT: Formal analysis
        CreditFormalAnalysis = "http://credit.niso.org/contributor-roles/formal-analysis/",
        /// CRediT: Funding acquisition
        CreditFundingAcquisition = "http://credit.niso.org/contributor-roles/funding-acquisition/",
        /// CRediT: Investigation
        CreditInvestigation = "http://credit.niso.org/contributor-roles/investigation/",
        /// CRediT: Methodology
        CreditMethodology = "http://credit.niso.org/contributor-roles/methodology/",
        /// CRediT: Project administration
        CreditProjectAdministration = "http://credit.niso.org/contributor-roles/project-administration/",
        /// CRediT: Resources
        CreditResources = "http://credit.niso.org/contributor-roles/resources/",
        /// CRediT: Software
        CreditSoftware = "http://credit.niso.org/contributor-roles/software/",
        /// CRediT: Supervision
        CreditSupervision = "http://credit.niso.org/contributor-roles/supervision/",
        /// CRediT: Validation
        CreditValidation = "http://credit.niso.org/contributor-roles/validation/",
        /// CRediT: Visualization
        CreditVisualization = "http://credit.niso.org/contributor-roles/visualization/",
        /// CRediT: Writing – original draft
        CreditWritingOriginalDraft = "http://credit.niso.org/contributor-roles/writing-original-draft/",
        /// CRediT: Writing – review & editing
        CreditWritingReviewEditing = "http://credit.niso.org/contributor-roles/writing-review-editing/",
    }
}

/// A work's title block: `{"title": {"value"}, "subtitle": {"value"}, "translated-title": {…}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkTitle {
    /// The title (required by ORCID, code 9022).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub title: Option<String>,
    /// The subtitle.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub subtitle: Option<String>,
    /// The title in another language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translated_title: Option<TranslatedTitle>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl WorkTitle {
    /// A title block with just a title.
    pub fn new(title: impl Into<String>) -> Self {
        WorkTitle {
            title: Some(title.into()),
            ..WorkTitle::default()
        }
    }
}

/// A citation: `{"citation-type": "bibtex", "citation-value": "@article{…}"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Citation {
    /// The format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation_type: Option<CitationType>,
    /// The citation text.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub citation_value: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A list of contributors: `{"contributor": […]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contributors {
    /// The contributors. `null` reads as empty.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub contributor: Vec<Contributor>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A contributor to a work or a funding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Contributor {
    /// Their iD (unchecked: typed by people).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_orcid: Option<OrcidIdentifier>,
    /// The name to credit.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub credit_name: Option<String>,
    /// E-mail (ORCID never shows it publicly).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub contributor_email: Option<String>,
    /// Sequence and role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_attributes: Option<ContributorAttributes>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A contributor's sequence and role. Funding contributors have only a role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ContributorAttributes {
    /// First or additional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_sequence: Option<ContributorSequence>,
    /// The role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributor_role: Option<ContributorRole>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// A full work: the write body (POST, or PUT with a put code) and `GET /work/{put-code}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Work {
    /// When ORCID stored it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// ORCID's id of the item: absent on POST, required on PUT.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// `/0000-…/work/733536` (read-only).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Title, subtitle, translated title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<WorkTitle>,
    /// The journal (or book, for a chapter).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub journal_title: Option<String>,
    /// An abstract (≤ 5000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub short_description: Option<String>,
    /// A citation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<Citation>,
    /// The kind of work (required).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub work_type: Option<WorkType>,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_date: Option<FuzzyDate>,
    /// External identifiers (at least one `self`, code 9023).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// A link to the work.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Contributors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributors: Option<Contributors>,
    /// The work's language.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub language_code: Option<String>,
    /// Country of publication (ISO 3166 alpha-2).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub country: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Work {
    /// A minimal write body: a title, a type and one `self` identifier.
    pub fn new(title: impl Into<String>, work_type: WorkType, self_id: ExternalId) -> Self {
        Work {
            title: Some(WorkTitle::new(title)),
            work_type: Some(work_type),
            external_ids: Some(ExternalIds::new([self_id])),
            ..Work::default()
        }
    }

    /// The title text.
    pub fn title_text(&self) -> Option<&str> {
        self.title.as_ref()?.title.as_deref()
    }

    /// The same work without the fields ORCID sets itself (dates, source, path): what to
    /// send back on a PUT after reading it. The put code, visibility and unknown keys are
    /// kept.
    pub fn into_write_body(self) -> Self {
        Work {
            created_date: None,
            last_modified_date: None,
            source: None,
            path: None,
            ..self
        }
    }
}

/// A work inside a `/works` group (`GET /work/summary/{put-code}` too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkSummary {
    /// ORCID's id of the item.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub put_code: Option<PutCode>,
    /// When ORCID stored it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub created_date: Option<Timestamp>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Title block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<WorkTitle>,
    /// External identifiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// Link.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub url: Option<String>,
    /// Kind of work.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub work_type: Option<WorkType>,
    /// Publication date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_date: Option<FuzzyDate>,
    /// Journal title (in summaries since 3.0).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub journal_title: Option<String>,
    /// Who may see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
    /// `/0000-…/work/733536`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// The record holder's ordering (ORCID writes it as a string).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "as_text")]
    pub display_index: Option<i64>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

/// The works listing (`GET /v3.0/{orcid}/works`, and `works` in `activities-summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Works {
    /// When the section last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// Groups of works sharing an identifier.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub group: Vec<WorkGroup>,
    /// `/0000-…/works`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "plain")]
    pub path: Option<String>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}

impl Works {
    /// Every summary of every group, in order.
    pub fn summaries(&self) -> impl Iterator<Item = &WorkSummary> {
        self.group.iter().flat_map(|g| g.work_summary.iter())
    }

    /// The put codes of every summary, in order.
    pub fn put_codes(&self) -> Vec<PutCode> {
        self.summaries().filter_map(|s| s.put_code).collect()
    }
}

/// One group of `/works`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct WorkGroup {
    /// When the group last changed.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "wrapped")]
    pub last_modified_date: Option<Timestamp>,
    /// The union of the groupable ids of the members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_ids: Option<ExternalIds>,
    /// The members.
    #[serde(default, deserialize_with = "serde_util::de_vec")]
    pub work_summary: Vec<WorkSummary>,
    /// Keys this crate does not model.
    #[serde(flatten)]
    pub extra: UnknownFields,
}
