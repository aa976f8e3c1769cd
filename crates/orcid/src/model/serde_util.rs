//! Lenient readers and canonical writers shared by the model.
//!
//! ORCID's own server (Jackson) accepts a bare scalar where the schema wants `{"value": …}`,
//! numbers given as strings and explicit `null`s. Reading here is as forgiving; writing always
//! produces the canonical form.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

/// A scalar that can be read from text, a number or a boolean.
pub(crate) trait Scalar: Sized {
    /// What the value should look like, for error messages.
    const EXPECTING: &'static str;
    /// Whether an empty (or all-blank) string means "absent" rather than a value.
    const BLANK_IS_NONE: bool = true;

    fn from_text(s: &str) -> Result<Self, String>;

    fn from_u64(n: u64) -> Result<Self, String>;

    fn from_i64(n: i64) -> Result<Self, String> {
        u64::try_from(n)
            .map_err(|_| format!("{n} is negative"))
            .and_then(Self::from_u64)
    }

    fn from_f64(n: f64) -> Result<Self, String> {
        if n.fract() == 0.0 && (0.0..1.8e19).contains(&n) {
            // Checked above: integral and within u64's range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Self::from_u64(n as u64)
        } else {
            Err(format!("{n} is not a whole non-negative number"))
        }
    }

    fn from_bool(b: bool) -> Result<Self, String> {
        Err(format!("unexpected boolean {b}"))
    }
}

impl Scalar for String {
    const EXPECTING: &'static str = "a string";
    const BLANK_IS_NONE: bool = false;

    fn from_text(s: &str) -> Result<Self, String> {
        Ok(s.to_owned())
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        Ok(n.to_string())
    }
    fn from_i64(n: i64) -> Result<Self, String> {
        Ok(n.to_string())
    }
    fn from_f64(n: f64) -> Result<Self, String> {
        Ok(n.to_string())
    }
    fn from_bool(b: bool) -> Result<Self, String> {
        Ok(b.to_string())
    }
}

macro_rules! unsigned_scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            const EXPECTING: &'static str = "a whole number (or a string holding one)";
            fn from_text(s: &str) -> Result<Self, String> {
                s.trim().parse().map_err(|_| format!("`{s}` is not a whole number"))
            }
            fn from_u64(n: u64) -> Result<Self, String> {
                <$t>::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}
unsigned_scalar!(u64, u32, u16);

impl Scalar for i64 {
    const EXPECTING: &'static str = "a whole number (or a string holding one)";
    fn from_text(s: &str) -> Result<Self, String> {
        s.trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a whole number"))
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        i64::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
    fn from_i64(n: i64) -> Result<Self, String> {
        Ok(n)
    }
}

impl Scalar for bool {
    const EXPECTING: &'static str = "a boolean (or \"true\"/\"false\")";
    fn from_text(s: &str) -> Result<Self, String> {
        match s.trim() {
            "true" | "TRUE" | "True" => Ok(true),
            "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("`{s}` is not a boolean")),
        }
    }
    fn from_u64(n: u64) -> Result<Self, String> {
        Err(format!("unexpected number {n}"))
    }
    fn from_bool(b: bool) -> Result<Self, String> {
        Ok(b)
    }
}

/// Reads `null`, a bare scalar, or `{"value": scalar-or-null, …}` (other keys of the wrapper
/// are ignored) into `Option<T>`.
pub(crate) struct OptScalar<T>(PhantomData<T>);

impl<T> OptScalar<T> {
    pub(crate) fn new() -> Self {
        OptScalar(PhantomData)
    }
}

impl<'de, T: Scalar> Visitor<'de> for OptScalar<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, bare or as {{\"value\": …}}, or null", T::EXPECTING)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if T::BLANK_IS_NONE && v.trim().is_empty() {
            return Ok(None);
        }
        T::from_text(v).map(Some).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::from_u64(v).map(Some).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i64(v).map(Some).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v).map(Some).map_err(E::custom)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        T::from_bool(v).map(Some).map_err(E::custom)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "value" {
                out = map.next_value_seed(OptScalar::<T>::new())?;
            } else {
                // Dropped: a wrapper's only known key is "value".
                super::common::note_unknown_keys([&key]);
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

impl<'de, T: Scalar> DeserializeSeed<'de> for OptScalar<T> {
    type Value = Option<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Lenient read of an optional scalar (see [`OptScalar`]).
pub(crate) fn de_opt<'de, D: Deserializer<'de>, T: Scalar>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_any(OptScalar::<T>::new())
}

/// Lenient read of a scalar that is always written; absent or `null` becomes the default.
pub(crate) fn de_or_default<'de, D: Deserializer<'de>, T: Scalar + Default>(
    d: D,
) -> Result<T, D::Error> {
    de_opt(d).map(Option::unwrap_or_default)
}

/// A list that may be `null`.
pub(crate) fn de_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}

/// Writes `{"value": v}`; reads leniently. For `Option` fields that are skipped when `None`.
pub(crate) mod wrapped {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("value", inner)?;
                m.end()
            }
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Scalar>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        de_opt(d)
    }
}

/// Writes the bare value; reads leniently (bare, wrapped, number-as-string).
pub(crate) mod plain {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Scalar>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        de_opt(d)
    }
}

/// Writes the value as a JSON string (ORCID's activity `display-index` is `"0"`); reads
/// leniently.
pub(crate) mod as_text {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: fmt::Display>(
        v: &Option<T>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => s.collect_str(inner),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Scalar>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        de_opt(d)
    }
}

/// Declares an ORCID string enumeration that keeps values it does not know.
///
/// Reading never fails on an unknown value: it lands in `Other(String)`, exactly as sent, and
/// is written back unchanged.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this crate does not know, kept exactly as ORCID sent it.
            Other(String),
        }

        impl $name {
            /// Every value this crate knows, in ORCID's spelling.
            pub const KNOWN: &'static [&'static str] = &[$($text),*];

            /// ORCID's spelling of the value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $text, )*
                    $name::Other(s) => s.as_str(),
                }
            }

            /// Reads ORCID's spelling; anything else becomes [`Self::Other`].
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $text => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }

            /// Whether this is a value this crate knows (not [`Self::Other`]).
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}
pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read<T: Scalar>(v: serde_json::Value) -> Result<Option<T>, serde_json::Error> {
        de_opt::<_, T>(v)
    }

    #[test]
    fn scalars_read_bare_wrapped_null_and_as_text() {
        assert_eq!(read::<u64>(json!(5)).unwrap(), Some(5));
        assert_eq!(read::<u64>(json!("5")).unwrap(), Some(5));
        assert_eq!(read::<u64>(json!(" 5 ")).unwrap(), Some(5));
        assert_eq!(read::<u64>(json!({"value": "5"})).unwrap(), Some(5));
        assert_eq!(
            read::<u64>(json!({"value": 5, "transient": true})).unwrap(),
            Some(5)
        );
        assert_eq!(read::<u64>(json!(5.0)).unwrap(), Some(5));
        assert_eq!(read::<u64>(json!(null)).unwrap(), None);
        assert_eq!(read::<u64>(json!({"value": null})).unwrap(), None);
        assert_eq!(read::<u64>(json!({})).unwrap(), None);
        // A blank number is absent, but a blank string is a string.
        assert_eq!(read::<u64>(json!("")).unwrap(), None);
        assert_eq!(read::<String>(json!("")).unwrap(), Some(String::new()));
        assert_eq!(read::<String>(json!(12)).unwrap(), Some("12".to_owned()));
        assert_eq!(read::<bool>(json!("true")).unwrap(), Some(true));
        assert_eq!(read::<i64>(json!(-3)).unwrap(), Some(-3));
    }

    #[test]
    fn scalars_refuse_what_is_not_them() {
        assert!(read::<u64>(json!(-1)).is_err());
        assert!(read::<u64>(json!(1.5)).is_err());
        assert!(read::<u64>(json!("x")).is_err());
        assert!(read::<u16>(json!(70000)).is_err());
        assert!(read::<u64>(json!([1])).is_err());
        assert!(read::<bool>(json!(1)).is_err());
    }

    #[test]
    fn wrapped_and_text_writers() {
        #[derive(Serialize)]
        struct Doc {
            #[serde(with = "wrapped")]
            w: Option<u64>,
            #[serde(with = "as_text")]
            t: Option<i64>,
            #[serde(with = "plain")]
            p: Option<String>,
        }
        let doc = Doc {
            w: Some(7),
            t: Some(3),
            p: Some("x".to_owned()),
        };
        assert_eq!(
            serde_json::to_value(doc).unwrap(),
            json!({"w": {"value": 7}, "t": "3", "p": "x"})
        );
    }
}
