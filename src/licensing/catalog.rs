//! SKU → entitlement tag, category and term. Ships with the NCS 540 Flexible
//! Consumption table of the seed; more from a YAML file named in the config.

use crate::store::Db;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Essential,
    Advanced,
    /// Counted and reported, never out of compliance.
    Tracking,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sku {
    pub sku: String,
    pub tag: String,
    /// Years a term SKU runs from its start; absent for perpetual SKUs.
    #[serde(default)]
    pub term_years: Option<u32>,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub tag: String,
    pub category: Category,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    skus: Vec<Sku>,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    skus: BTreeMap<String, Sku>,
    tags: BTreeMap<String, Tag>,
}

pub const ESS_RTU: &str = "ESS-AC-10G-RTU-1";
pub const ESS_SIA: &str = "ESS-AC-10G-SIA";
pub const ADV_RTU: &str = "ADV-AC-10G-RTU-1";
pub const ADV_SIA: &str = "ADV-AC-10G-SIA";
pub const CHASSIS_TRACKING: &str = "N540-24Z8Q2C-FC-SW";
const SIA_TERMS: [u32; 5] = [3, 4, 5, 7, 10];

impl Catalog {
    /// The seed's NCS 540 table.
    pub fn builtin() -> Self {
        let mut catalog = Self {
            skus: BTreeMap::new(),
            tags: BTreeMap::new(),
        };
        let tags = [
            (
                ESS_RTU,
                Category::Essential,
                "Access Essentials SW Right-to-Use v1.0 per 10G",
            ),
            (
                ESS_SIA,
                Category::Essential,
                "Access Essentials SIA per 10G",
            ),
            (
                ADV_RTU,
                Category::Advanced,
                "Access Advantage SW Right-to-Use v1.0 per 10G",
            ),
            (ADV_SIA, Category::Advanced, "Access Advantage SIA per 10G"),
            (
                CHASSIS_TRACKING,
                Category::Tracking,
                "NCS 540 Series additional Software Licenses (RTU, SIA)",
            ),
        ];
        for (tag, category, description) in tags {
            catalog.add_tag(Tag {
                tag: tag.into(),
                category,
                description: description.into(),
            });
        }
        let perpetual = [
            (
                ESS_RTU,
                ESS_RTU,
                "Access Network Essentials Software RTU per 10Gb",
            ),
            (
                ADV_RTU,
                ADV_RTU,
                "Access Network Advanced Software RTU per 10Gb",
            ),
            (
                CHASSIS_TRACKING,
                CHASSIS_TRACKING,
                "NCS 540 Series additional Software Licenses (RTU, SIA)",
            ),
        ];
        for (sku, tag, description) in perpetual {
            catalog.add_sku(Sku {
                sku: sku.into(),
                tag: tag.into(),
                term_years: None,
                description: description.into(),
            });
        }
        for years in SIA_TERMS {
            for (prefix, tag, level) in
                [("ESS", ESS_SIA, "Essentials"), ("ADV", ADV_SIA, "Advanced")]
            {
                catalog.add_sku(Sku {
                    sku: format!("{prefix}-AC-10G-SIA-{years}"),
                    tag: tag.into(),
                    term_years: Some(years),
                    description: format!(
                        "Access Network {level} Software Innovation Access per 10Gb: {years}-year"
                    ),
                });
            }
        }
        catalog
    }

    /// The built-in table plus the file's SKUs and tags (a file may override).
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut catalog = Self::builtin();
        let Some(path) = file else {
            return Ok(catalog);
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let de = serde_yaml::Deserializer::from_str(&text);
        let extra: CatalogFile = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
        for tag in extra.tags {
            catalog.add_tag(tag);
        }
        for sku in extra.skus {
            if !catalog.tags.contains_key(&sku.tag) {
                return Err(format!(
                    "{}: SKU {} fills tag {}, which is neither built in nor listed under `tags`",
                    path.display(),
                    sku.sku,
                    sku.tag
                ));
            }
            catalog.add_sku(sku);
        }
        Ok(catalog)
    }

    /// This catalog with SKUs and tags added (from the cloud or the
    /// database); a SKU must fill a tag that is known afterwards.
    pub fn with_additions(&self, tags: &[Tag], skus: &[Sku]) -> Result<Self, String> {
        let mut catalog = self.clone();
        for tag in tags {
            if tag.tag.trim().is_empty() || tag.tag.len() > 128 {
                return Err(format!(
                    "tag {:?} is empty or longer than 128 characters",
                    tag.tag
                ));
            }
            catalog.add_tag(tag.clone());
        }
        for sku in skus {
            if sku.sku.trim().is_empty() || sku.sku.len() > 128 {
                return Err(format!(
                    "SKU {:?} is empty or longer than 128 characters",
                    sku.sku
                ));
            }
            if !catalog.tags.contains_key(&sku.tag) {
                return Err(format!(
                    "SKU {} fills tag {}, which is neither built in nor added",
                    sku.sku, sku.tag
                ));
            }
            catalog.add_sku(sku.clone());
        }
        Ok(catalog)
    }

    /// The built-in table, the config's file, then the additions stored in
    /// the database (`(kind, name, JSON)` rows): what a running server and
    /// every CLI command see alike.
    pub fn load_with_stored(
        file: Option<&Path>,
        stored: &[(String, String, String)],
    ) -> Result<Self, String> {
        let base = Self::load(file)?;
        let mut tags = Vec::new();
        let mut skus = Vec::new();
        for (kind, name, body) in stored {
            let bad = |e: serde_json::Error| format!("stored catalog entry {kind} {name}: {e}");
            match kind.as_str() {
                "tag" => tags.push(serde_json::from_str::<Tag>(body).map_err(bad)?),
                _ => skus.push(serde_json::from_str::<Sku>(body).map_err(bad)?),
            }
        }
        base.with_additions(&tags, &skus)
    }

    /// What this catalog has beyond (or different from) the built-in table:
    /// the catalog additions an entitlement bundle carries.
    pub fn additions(&self) -> (Vec<Tag>, Vec<Sku>) {
        let builtin = Self::builtin();
        let tags = self
            .tags
            .values()
            .filter(|t| {
                builtin
                    .tag(&t.tag)
                    .is_none_or(|b| b.category != t.category || b.description != t.description)
            })
            .cloned()
            .collect();
        let skus = self
            .skus
            .values()
            .filter(|s| {
                builtin.sku(&s.sku).is_none_or(|b| {
                    b.tag != s.tag || b.term_years != s.term_years || b.description != s.description
                })
            })
            .cloned()
            .collect();
        (tags, skus)
    }

    fn add_tag(&mut self, tag: Tag) {
        self.tags.insert(tag.tag.clone(), tag);
    }

    fn add_sku(&mut self, sku: Sku) {
        self.skus.insert(sku.sku.clone(), sku);
    }

    pub fn sku(&self, name: &str) -> Option<&Sku> {
        self.skus.get(name)
    }

    pub fn tag(&self, name: &str) -> Option<&Tag> {
        self.tags.get(name)
    }

    pub fn skus(&self) -> impl Iterator<Item = &Sku> {
        self.skus.values()
    }

    pub fn is_tracking(&self, tag: &str) -> bool {
        self.tag(tag)
            .is_some_and(|t| t.category == Category::Tracking)
    }
}

/// The catalog a running server holds. Sync stores catalog additions in the
/// database, possibly from another process (`satellite import`), so the
/// server swaps in a fresh catalog whenever their version moves.
pub struct SharedCatalog {
    current: RwLock<(i64, Arc<Catalog>)>,
    file: Option<PathBuf>,
}

impl SharedCatalog {
    /// The built-in table, the config's file and the database's additions.
    pub fn load(c: &Db, file: Option<&Path>) -> Result<Self, String> {
        let shared = Self {
            current: RwLock::new((-1, Arc::new(Catalog::load(file)?))),
            file: file.map(Path::to_path_buf),
        };
        shared.refresh(c)?;
        Ok(shared)
    }

    pub fn get(&self) -> Arc<Catalog> {
        match self.current.read() {
            Ok(current) => current.1.clone(),
            Err(poisoned) => poisoned.into_inner().1.clone(),
        }
    }

    /// Reloads when the stored additions changed; returns whether it did.
    pub fn refresh(&self, c: &Db) -> Result<bool, String> {
        let version = crate::store::sync::catalog_version(c).map_err(|e| e.to_string())?;
        if self
            .current
            .read()
            .map(|cur| cur.0 == version)
            .unwrap_or(false)
        {
            return Ok(false);
        }
        let stored = crate::store::sync::catalog_entries(c).map_err(|e| e.to_string())?;
        let catalog = Catalog::load_with_stored(self.file.as_deref(), &stored)?;
        if let Ok(mut current) = self.current.write() {
            *current = (version, Arc::new(catalog));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sia_term_fills_its_tag() {
        let catalog = Catalog::builtin();
        for years in SIA_TERMS {
            let ess = catalog
                .sku(&format!("ESS-AC-10G-SIA-{years}"))
                .expect("ess");
            assert_eq!((ess.tag.as_str(), ess.term_years), (ESS_SIA, Some(years)));
            let adv = catalog
                .sku(&format!("ADV-AC-10G-SIA-{years}"))
                .expect("adv");
            assert_eq!(adv.tag, ADV_SIA);
        }
        assert_eq!(catalog.sku(ESS_RTU).map(|s| s.term_years), Some(None));
        assert!(catalog.is_tracking(CHASSIS_TRACKING));
        assert!(catalog.tag("NO-SUCH-TAG").is_none());
    }

    #[test]
    fn a_file_adds_skus_and_tags() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.yaml");
        std::fs::write(
            &path,
            "tags:\n  - { tag: ESS-100G-RTU-1, category: essential }\nskus:\n  - { sku: ESS-100G-RTU-1, tag: ESS-100G-RTU-1 }\n",
        )
        .expect("write");
        let catalog = Catalog::load(Some(&path)).expect("load");
        assert!(catalog.sku("ESS-100G-RTU-1").is_some());
        std::fs::write(&path, "skus:\n  - { sku: X, tag: NOPE }\n").expect("write");
        assert!(Catalog::load(Some(&path)).unwrap_err().contains("NOPE"));
    }
}
