//! Decoding of the params JSON the way Go's `encoding/json` decodes it into the reference's
//! `GlobalParams` struct: keys match case-insensitively (Go's simple case folding), unknown keys
//! are ignored, a missing or `null` field keeps its zero value, duplicate keys let the last one
//! win, and every number field is a `uint64` (negative, fractional and out-of-range numbers are
//! type errors). Matching this decides which files are accepted, so it is not left to serde's
//! derive, which is case-sensitive.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// One version entry exactly as written, before any validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawVersion {
    pub version: u64,
    pub activation_height: u64,
    pub staking_cap: u64,
    pub cap_height: u64,
    pub tag: String,
    pub covenant_pks: Vec<String>,
    pub covenant_quorum: u64,
    pub unbonding_time: u64,
    pub unbonding_fee: u64,
    pub max_staking_amount: u64,
    pub min_staking_amount: u64,
    pub max_staking_time: u64,
    pub min_staking_time: u64,
    pub confirmation_depth: u64,
}

/// The whole file as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawGlobalParams {
    pub versions: Vec<RawVersion>,
}

/// Decodes `bytes` as Go would decode them into the reference struct.
pub(crate) fn decode(bytes: &[u8]) -> Result<RawGlobalParams, serde_json::Error> {
    let top: Nullable<RawGlobalParams> = serde_json::from_slice(bytes)?;
    Ok(top.0.unwrap_or_default())
}

/// Go's key matching: `foldName(key) == foldName(field)`. Field names are lower-case ASCII, so
/// a key matches when each character folds to the field's character: ASCII letters in either
/// case, and the two non-ASCII runes whose fold set contains an ASCII letter (U+017F `ſ` ~ `s`,
/// U+212A KELVIN SIGN ~ `k`).
fn folds_to(key: &str, field: &str) -> bool {
    let mut key_chars = key.chars();
    for f in field.chars() {
        let Some(k) = key_chars.next() else {
            return false;
        };
        let same = match k {
            '\u{17f}' => f == 's',
            '\u{212a}' => f == 'k',
            _ => k.is_ascii() && k.to_ascii_lowercase() == f,
        };
        if !same {
            return false;
        }
    }
    key_chars.next().is_none()
}

/// A value that Go leaves untouched when the JSON says `null`.
struct Nullable<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Nullable)
    }
}

/// A Go `uint64` field: a non-negative integer literal that fits, or `null`.
struct GoU64(Option<u64>);

impl<'de> Deserialize<'de> for GoU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GoU64;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an unsigned 64-bit integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<GoU64, E> {
                Ok(GoU64(Some(v)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<GoU64, E> {
                Ok(GoU64(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Go `string` field or slice element: a JSON string, or `null` (zero value).
struct GoString(Option<String>);

impl<'de> Deserialize<'de> for GoString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(GoString)
    }
}

fn with_field<E: de::Error>(field: &str, e: E) -> E {
    E::custom(format_args!("field `{field}`: {e}"))
}

impl<'de> Deserialize<'de> for RawGlobalParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawGlobalParams;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with a `versions` array")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = RawGlobalParams::default();
                while let Some(key) = map.next_key::<String>()? {
                    if folds_to(&key, "versions") {
                        let versions: Nullable<VersionList> = map.next_value()?;
                        if let Some(list) = versions.0 {
                            out.versions = list.0;
                        } else {
                            out.versions = Vec::new();
                        }
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

/// The `versions` array; a `null` element is a zero-valued version, as in Go.
struct VersionList(Vec<RawVersion>);

impl<'de> Deserialize<'de> for VersionList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VersionList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of version objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut index = 0usize;
                while let Some(v) = seq.next_element::<Nullable<RawVersion>>().map_err(|e| {
                    <A::Error as de::Error>::custom(format_args!("versions[{index}]: {e}"))
                })? {
                    out.push(v.0.unwrap_or_default());
                    index += 1;
                }
                Ok(VersionList(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The `covenant_pks` array; `null` elements decode to empty strings, as in Go.
struct StringList(Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = Vec::<GoString>::deserialize(d)?;
        Ok(StringList(
            items.into_iter().map(|s| s.0.unwrap_or_default()).collect(),
        ))
    }
}

const U64_FIELDS: [&str; 12] = [
    "version",
    "activation_height",
    "staking_cap",
    "cap_height",
    "covenant_quorum",
    "unbonding_time",
    "unbonding_fee",
    "max_staking_amount",
    "min_staking_amount",
    "max_staking_time",
    "min_staking_time",
    "confirmation_depth",
];

fn u64_slot<'a>(raw: &'a mut RawVersion, field: &str) -> Option<&'a mut u64> {
    Some(match field {
        "version" => &mut raw.version,
        "activation_height" => &mut raw.activation_height,
        "staking_cap" => &mut raw.staking_cap,
        "cap_height" => &mut raw.cap_height,
        "covenant_quorum" => &mut raw.covenant_quorum,
        "unbonding_time" => &mut raw.unbonding_time,
        "unbonding_fee" => &mut raw.unbonding_fee,
        "max_staking_amount" => &mut raw.max_staking_amount,
        "min_staking_amount" => &mut raw.min_staking_amount,
        "max_staking_time" => &mut raw.max_staking_time,
        "min_staking_time" => &mut raw.min_staking_time,
        "confirmation_depth" => &mut raw.confirmation_depth,
        _ => return None,
    })
}

impl<'de> Deserialize<'de> for RawVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawVersion;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a params version object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = RawVersion::default();
                while let Some(key) = map.next_key::<String>()? {
                    if let Some(field) = U64_FIELDS.iter().find(|f| folds_to(&key, f)) {
                        let value: GoU64 = map.next_value().map_err(|e| with_field(field, e))?;
                        if let (Some(v), Some(slot)) = (value.0, u64_slot(&mut out, field)) {
                            *slot = v;
                        }
                    } else if folds_to(&key, "tag") {
                        let value: GoString = map.next_value().map_err(|e| with_field("tag", e))?;
                        if let Some(v) = value.0 {
                            out.tag = v;
                        }
                    } else if folds_to(&key, "covenant_pks") {
                        let value: Nullable<StringList> = map
                            .next_value()
                            .map_err(|e| with_field("covenant_pks", e))?;
                        out.covenant_pks = value.0.map(|l| l.0).unwrap_or_default();
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn keys_match_case_insensitively_like_go() {
        assert!(folds_to("Version", "version"));
        assert!(folds_to("CAP_HEIGHT", "cap_height"));
        assert!(folds_to("\u{17f}taking_cap", "staking_cap"));
        assert!(folds_to("\u{212a}", "k"));
        assert!(!folds_to("versions", "version"));
        assert!(!folds_to("versio", "version"));
        assert!(!folds_to("vérsion", "version"));
    }

    #[test]
    fn unknown_keys_are_ignored_and_missing_numbers_are_zero() {
        let raw =
            decode(br#"{"Versions":[{"VERSION":3,"extra":{"a":[1]},"tag":"00"}],"x":1}"#).unwrap();
        assert_eq!(raw.versions.len(), 1);
        assert_eq!(raw.versions[0].version, 3);
        assert_eq!(raw.versions[0].staking_cap, 0);
        assert_eq!(raw.versions[0].tag, "00");
    }

    #[test]
    fn null_keeps_the_earlier_value_and_the_last_duplicate_wins() {
        let raw = decode(
            br#"{"versions":[{"version":3,"Version":null,"cap_height":1,"CAP_height":2}, null]}"#,
        )
        .unwrap();
        assert_eq!(raw.versions[0].version, 3);
        assert_eq!(raw.versions[0].cap_height, 2);
        assert_eq!(raw.versions[1], RawVersion::default());
    }

    #[test]
    fn negative_fractional_and_string_numbers_are_type_errors() {
        for bad in [
            r#"{"versions":[{"version":-1}]}"#,
            r#"{"versions":[{"version":1.5}]}"#,
            r#"{"versions":[{"version":1e3}]}"#,
            r#"{"versions":[{"version":"1"}]}"#,
            r#"{"versions":[{"version":18446744073709551616}]}"#,
            r#"{"versions":{}}"#,
            r#"[]"#,
            r#"{"versions":[]} x"#,
        ] {
            let err = decode(bad.as_bytes()).unwrap_err();
            assert!(!err.to_string().is_empty(), "{bad}");
        }
    }

    #[test]
    fn top_level_null_is_an_empty_file() {
        assert_eq!(decode(b"null").unwrap(), RawGlobalParams::default());
    }
}
