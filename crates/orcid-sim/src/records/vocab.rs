//! ORCID's fixed vocabularies (reference §3.4, §3.5; orcid-model's Java enums).

/// Work `type` values of the v3.0 `WorkType` enum.
pub const WORK_TYPES: &[&str] = &[
    "annotation",
    "artistic-performance",
    "blog-post",
    "book-chapter",
    "book-review",
    "book",
    "cartographic-material",
    "clinical-study",
    "conference-abstract",
    "conference-output",
    "conference-paper",
    "conference-poster",
    "conference-presentation",
    "conference-proceedings",
    "data-management-plan",
    "data-set",
    "design",
    "dictionary-entry",
    "disclosure",
    "dissertation-thesis",
    "edited-book",
    "encyclopedia-entry",
    "image",
    "invention",
    "journal-article",
    "journal-issue",
    "learning-object",
    "lecture-speech",
    "license",
    "magazine-article",
    "manual",
    "moving-image",
    "musical-composition",
    "newsletter-article",
    "newspaper-article",
    "online-resource",
    "other",
    "patent",
    "physical-object",
    "preprint",
    "public-speech",
    "registered-copyright",
    "report",
    "research-technique",
    "research-tool",
    "review",
    "software",
    "sound",
    "spin-off-company",
    "standards-and-policy",
    "supervised-student-publication",
    "technical-standard",
    "test",
    "trademark",
    "transcription",
    "translation",
    "website",
    "working-paper",
    "undefined",
];

/// Input aliases ORCID accepts for work types, and the type each is stored as.
/// The stored type for each alias is this simulator's reading (not confirmed against ORCID).
pub const WORK_TYPE_ALIASES: &[(&str, &str)] = &[
    ("article-journal", "journal-article"),
    ("chapter", "book-chapter"),
    ("dataset", "data-set"),
    ("standard", "standards-and-policy"),
];

/// Funding `type` values.
pub const FUNDING_TYPES: &[&str] = &["grant", "contract", "award", "salary-award"];

/// `citation-type` values.
pub const CITATION_TYPES: &[&str] = &[
    "formatted-unspecified",
    "bibtex",
    "formatted-apa",
    "formatted-harvard",
    "formatted-ieee",
    "formatted-mla",
    "formatted-vancouver",
    "formatted-chicago",
    "ris",
];

/// `external-id-relationship` values.
pub const RELATIONSHIPS: &[&str] = &["self", "part-of", "version-of", "funded-by"];

/// `contributor-sequence` values.
pub const CONTRIBUTOR_SEQUENCES: &[&str] = &["first", "additional"];

/// Work contributor roles (the original vocabulary).
pub const WORK_CONTRIBUTOR_ROLES: &[&str] = &[
    "author",
    "assignee",
    "editor",
    "chair-or-translator",
    "co-investigator",
    "co-inventor",
    "graduate-student",
    "other-inventor",
    "principal-investigator",
    "postdoctoral-researcher",
    "support-staff",
];

/// Funding contributor roles (the original vocabulary).
pub const FUNDING_CONTRIBUTOR_ROLES: &[&str] =
    &["lead", "co-lead", "supported-by", "other-contribution"];

/// CRediT roles, accepted as `http://credit.niso.org/contributor-roles/{role}/`.
pub const CREDIT_ROLES: &[&str] = &[
    "conceptualization",
    "data-curation",
    "formal-analysis",
    "funding-acquisition",
    "investigation",
    "methodology",
    "project-administration",
    "resources",
    "software",
    "supervision",
    "validation",
    "visualization",
    "writing-original-draft",
    "writing-review-editing",
];

/// Work and funding `external-id-type` API names (ORCID serves the live list at
/// `/v3.0/identifiers`; this is a fixed copy).
pub const EXTERNAL_ID_TYPES: &[&str] = &[
    "agr",
    "ark",
    "arxiv",
    "asin",
    "asin-tld",
    "authenticusid",
    "bibcode",
    "cba",
    "cgn",
    "cienciaiul",
    "cit",
    "cstr",
    "ctx",
    "dnb",
    "doi",
    "eid",
    "emdb",
    "empiar",
    "ethos",
    "grant_number",
    "hal",
    "handle",
    "hir",
    "isbn",
    "ismn",
    "issn",
    "jfm",
    "jstor",
    "k10plus",
    "kuid",
    "lccn",
    "lensid",
    "mr",
    "oclc",
    "ol",
    "osti",
    "other-id",
    "pat",
    "pdb",
    "pmc",
    "pmid",
    "ppr",
    "proposal-id",
    "raid",
    "rfc",
    "rrid",
    "source-work-id",
    "ssrn",
    "uri",
    "urn",
    "wosuid",
    "zbl",
];

/// ISO 3166-1 alpha-2 codes (plus `XK`, which ORCID's `Iso3166Country` also has).
pub const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW";

/// ISO 639-1 codes, the legacy ones Java still uses (`iw`, `in`, `ji`, `mo`, `sh`), and ORCID's
/// `zh_CN` / `zh_TW`: the `LanguageCode` values.
pub const LANGUAGES: &str = "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik in io is it iu iw ja ji jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mo mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh_CN zh_TW zu";

/// Whether `code` is a country ORCID knows.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c == code)
}

/// Whether `code` is a language ORCID knows.
pub fn is_language(code: &str) -> bool {
    LANGUAGES.split(' ').any(|c| c == code)
}

/// Whether `role` is a CRediT role URI (with or without the trailing slash, http or https).
pub fn is_credit_role(role: &str) -> bool {
    let rest = role
        .strip_prefix("http://credit.niso.org/contributor-roles/")
        .or_else(|| role.strip_prefix("https://credit.niso.org/contributor-roles/"));
    rest.map(|r| r.trim_end_matches('/'))
        .is_some_and(|r| CREDIT_ROLES.contains(&r))
}
