//! How many records a payload file holds, counted as it is parsed: `bundle
//! show` describes a bundle of a million product instances without
//! building them in memory.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// A payload file's records: a list, the entitlement bundle's virtual
/// accounts and licenses, or the catalog's tags and SKUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    Items(usize),
    Accounts {
        virtual_accounts: usize,
        licenses: usize,
    },
    Catalog {
        tags: usize,
        skus: usize,
    },
    Other,
}

impl Shape {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Shape::Items(n) => serde_json::json!(n),
            Shape::Accounts {
                virtual_accounts,
                licenses,
            } => serde_json::json!({"virtual_accounts": virtual_accounts, "licenses": licenses}),
            Shape::Catalog { tags, skus } => serde_json::json!({"tags": tags, "skus": skus}),
            Shape::Other => serde_json::json!(1),
        }
    }
}

/// The length of a list, elements skipped unread.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(V)
    }
}

/// One virtual account's number of licenses.
struct Licenses(usize);

impl<'de> Deserialize<'de> for Licenses {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Licenses;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a virtual account")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Licenses, A::Error> {
                let mut n = 0;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "licenses" {
                        n = map.next_value::<Count>()?.0;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Licenses(n))
            }
        }
        d.deserialize_map(V)
    }
}

/// Virtual accounts and their licenses.
struct Accounts(usize, usize);

impl<'de> Deserialize<'de> for Accounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Accounts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of virtual accounts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Accounts, A::Error> {
                let (mut vas, mut licenses) = (0, 0);
                while let Some(va) = seq.next_element::<Licenses>()? {
                    vas += 1;
                    licenses += va.0;
                }
                Ok(Accounts(vas, licenses))
            }
        }
        d.deserialize_seq(V)
    }
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Shape::Items(n))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                let (mut accounts, mut tags, mut skus) = (None, None, None);
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "virtual_accounts" => accounts = Some(map.next_value::<Accounts>()?),
                        "tags" => tags = Some(map.next_value::<Count>()?.0),
                        "skus" => skus = Some(map.next_value::<Count>()?.0),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(match (accounts, skus) {
                    (Some(Accounts(virtual_accounts, licenses)), _) => Shape::Accounts {
                        virtual_accounts,
                        licenses,
                    },
                    (None, Some(skus)) => Shape::Catalog {
                        tags: tags.unwrap_or(0),
                        skus,
                    },
                    (None, None) => Shape::Other,
                })
            }
            fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_unit<E>(self) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lists_accounts_and_catalogs_without_keeping_them() {
        let shape = |text: &str| serde_json::from_str::<Shape>(text).expect("json");
        assert_eq!(shape("[1, {\"a\": [2]}, 3]"), Shape::Items(3));
        assert_eq!(
            shape(
                r#"{"account": "x", "virtual_accounts": [
                    {"name": "Lab", "licenses": [{"q": 1}, {"q": 2}]},
                    {"licenses": []}, {"name": "no licenses key"}]}"#
            ),
            Shape::Accounts {
                virtual_accounts: 3,
                licenses: 2
            }
        );
        assert_eq!(
            shape(r#"{"tags": [1, 2], "skus": [1]}"#),
            Shape::Catalog { tags: 2, skus: 1 }
        );
        assert_eq!(shape(r#"{"x": 1}"#), Shape::Other);
        assert_eq!(shape("7"), Shape::Other);
    }
}
