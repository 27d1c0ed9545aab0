//! [`MacKind`]: what a multiply-accumulate multiplies, the typed key of the MAC counts.
//!
//! The hardware crate maps a MAC to its processing element by these two fields, so the kind is a
//! type, not text to parse. It is also a key of stored records, so it reads and writes as its
//! canonical text `w<weights>_a<activations>` ([`WeightKind::label`] and [`DType::label`]: e.g.
//! `wint8_au8`, `wter_au8`, `wbin_abin`), which keeps every stored count byte-identical.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::types::{DType, WeightKind};

/// The operands of a MAC: the layer's weight kind and its input activations' dtype.
///
/// Equality, order and hashing are those of the key text, so maps keyed by `MacKind` keep the order
/// they had as text and can be looked up with the text ([`Borrow<str>`]); the key is a function of
/// the two fields, which the constructors keep private.
#[derive(Clone, Debug)]
pub struct MacKind {
    weights: WeightKind,
    acts: DType,
    key: String,
}

impl MacKind {
    /// The kind of a MAC of `weights` over activations of `acts`.
    pub fn new(weights: WeightKind, acts: DType) -> Self {
        MacKind {
            weights,
            acts,
            key: format!("w{}_a{}", weights.label(), acts.label()),
        }
    }

    /// The kind of xnor-popcount MACs: +-1 weights over +-1 activations (`wbin_abin`).
    pub fn xnor() -> Self {
        MacKind::new(WeightKind::Binary, DType::Binary)
    }

    /// What the weights are.
    pub fn weights(&self) -> WeightKind {
        self.weights
    }

    /// What the activations are.
    pub fn acts(&self) -> DType {
        self.acts
    }

    /// The canonical key text, e.g. `wint8_au8`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for MacKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl Borrow<str> for MacKind {
    fn borrow(&self) -> &str {
        &self.key
    }
}

impl PartialEq for MacKind {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for MacKind {}

impl PartialOrd for MacKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MacKind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl Hash for MacKind {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

/// A text that is not a MAC kind key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{key}` is not a MAC kind: expected `w<int<bits>|bin|ter>_a<u<bits>|i<bits>|bin|i32>`, \
     e.g. `wint8_au8`"
)]
pub struct ParseMacKindError {
    /// The text given.
    pub key: String,
}

impl FromStr for MacKind {
    type Err = ParseMacKindError;

    /// Parses the key text that [`Display`](fmt::Display) writes (records store it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseMacKindError { key: s.to_string() };
        let (w, a) = s
            .strip_prefix('w')
            .and_then(|k| k.split_once("_a"))
            .ok_or_else(bad)?;
        let bits = |t: &str| t.parse::<u8>().ok();
        let weights = match w {
            "bin" => WeightKind::Binary,
            "ter" => WeightKind::Ternary,
            _ => WeightKind::Int {
                bits: w.strip_prefix("int").and_then(bits).ok_or_else(bad)?,
            },
        };
        let acts = match a {
            "bin" => DType::Binary,
            "i32" => DType::I32,
            _ => match (a.strip_prefix('u'), a.strip_prefix('i')) {
                (Some(b), _) => DType::Unsigned {
                    bits: bits(b).ok_or_else(bad)?,
                },
                (_, Some(b)) => DType::Signed {
                    bits: bits(b).ok_or_else(bad)?,
                },
                _ => return Err(bad()),
            },
        };
        let kind = MacKind::new(weights, acts);
        // Only the canonical spelling (no `int08`, no `+8`): what a record holds was written so.
        if kind.key == s { Ok(kind) } else { Err(bad()) }
    }
}

impl Serialize for MacKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.key)
    }
}

impl<'de> Deserialize<'de> for MacKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_text_round_trips_for_every_valid_kind() {
        let mut weights: Vec<WeightKind> = (2..=8).map(|bits| WeightKind::Int { bits }).collect();
        weights.extend([WeightKind::Binary, WeightKind::Ternary]);
        let mut acts: Vec<DType> = (1..=8).map(|bits| DType::Unsigned { bits }).collect();
        acts.extend((2..=8).map(|bits| DType::Signed { bits }));
        acts.extend([DType::Binary, DType::I32]);
        for &w in &weights {
            for &a in &acts {
                let k = MacKind::new(w, a);
                let back: MacKind = k.key().parse().unwrap();
                assert_eq!((back.weights(), back.acts()), (w, a), "{k}");
                let json = serde_json::to_string(&k).unwrap();
                assert_eq!(json, format!("\"{k}\""));
                assert_eq!(serde_json::from_str::<MacKind>(&json).unwrap(), k);
            }
        }
        assert_eq!(
            MacKind::new(WeightKind::Int { bits: 8 }, DType::U8).to_string(),
            "wint8_au8"
        );
        assert_eq!(
            MacKind::new(WeightKind::Ternary, DType::U8).key(),
            "wter_au8"
        );
        assert_eq!(MacKind::xnor().key(), "wbin_abin");
    }

    #[test]
    fn non_keys_are_errors_naming_them() {
        for key in [
            "wfoo_au8",
            "garbage",
            "wint8_a",
            "wint8_ax8",
            "wint08_au8",
            "int8_au8",
        ] {
            let err = key.parse::<MacKind>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn maps_keep_the_text_order_and_text_lookup() {
        let map: std::collections::BTreeMap<MacKind, u64> = [
            (MacKind::new(WeightKind::Ternary, DType::U8), 1),
            (MacKind::xnor(), 2),
            (MacKind::new(WeightKind::Int { bits: 8 }, DType::U8), 3),
            (MacKind::new(WeightKind::Binary, DType::U8), 4),
        ]
        .into_iter()
        .collect();
        let keys: Vec<&str> = map.keys().map(MacKind::key).collect();
        assert_eq!(keys, ["wbin_abin", "wbin_au8", "wint8_au8", "wter_au8"]);
        assert_eq!(map["wint8_au8"], 3);
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"wbin_abin":2,"wbin_au8":4,"wint8_au8":3,"wter_au8":1}"#
        );
    }
}
