//! `cargo xtask sbom`: the software bill of materials of OneDoor's image, as
//! CycloneDX 1.5 JSON.
//!
//! The image holds the six binaries of deploy/Dockerfile; what they contain
//! is every crate reachable from them through normal (not dev, not build)
//! dependencies on the image's platforms (amd64 and arm64). Cargo's own
//! resolve graph (`cargo metadata`) says which; Cargo.lock gives each
//! registry crate's SHA-256. Published beside the image (e.g. `oras attach`),
//! so a security review can ask "which images carry crate X at version Y"
//! without unpacking binaries.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The binaries deploy/Dockerfile puts in the image.
pub const IMAGE_BINARIES: [&str; 6] =
    ["intake", "medical-aid", "education-aid", "housing-aid", "temporary-aid", "workbench"];
const PLATFORMS: [&str; 2] = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"];

/// The CycloneDX document of the image's crates.
pub fn document() -> Result<Value> {
    let mut packages: BTreeMap<String, Value> = BTreeMap::new();
    let mut reachable: BTreeSet<String> = BTreeSet::new();
    let mut version = String::new();
    for platform in PLATFORMS {
        let out = super::cargo()
            .args(["metadata", "--format-version", "1", "--locked", "--filter-platform", platform])
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!("cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
        }
        let metadata: Value = serde_json::from_slice(&out.stdout)?;
        for package in metadata["packages"].as_array().into_iter().flatten() {
            packages.insert(package["id"].as_str().unwrap_or_default().to_string(), package.clone());
        }
        let roots: Vec<String> = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["targets"].as_array().into_iter().flatten().any(|t| {
                    t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"))
                        && IMAGE_BINARIES.contains(&t["name"].as_str().unwrap_or_default())
                })
            })
            .map(|p| p["id"].as_str().unwrap_or_default().to_string())
            .collect();
        if roots.len() != IMAGE_BINARIES.len() {
            bail!("found {} of the image's {} binaries in the workspace", roots.len(), IMAGE_BINARIES.len());
        }
        version = packages[&roots[0]]["version"].as_str().unwrap_or_default().to_string();
        let nodes: BTreeMap<&str, &Value> = metadata["resolve"]["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| (n["id"].as_str().unwrap_or_default(), n))
            .collect();
        let mut todo = roots;
        while let Some(id) = todo.pop() {
            if !reachable.insert(id.clone()) {
                continue;
            }
            for dep in nodes.get(id.as_str()).and_then(|n| n["deps"].as_array()).into_iter().flatten() {
                let normal = dep["dep_kinds"].as_array().into_iter().flatten().any(|k| k["kind"].is_null());
                if normal {
                    todo.push(dep["pkg"].as_str().unwrap_or_default().to_string());
                }
            }
        }
    }
    let checksums = lock_checksums()?;
    let components: Vec<Value> = reachable
        .iter()
        .map(|id| {
            let p = &packages[id];
            let (name, version) = (p["name"].as_str().unwrap_or_default(), p["version"].as_str().unwrap_or_default());
            let ours = p["source"].is_null();
            let mut component = json!({
                "type": if ours { "application" } else { "library" },
                "bom-ref": id,
                "name": name,
                "version": version,
                "purl": format!("pkg:cargo/{name}@{version}"),
            });
            if let Some(license) = p["license"].as_str() {
                component["licenses"] = json!([{ "expression": license }]);
            }
            if let Some(sum) = checksums.get(&(name.to_string(), version.to_string())) {
                component["hashes"] = json!([{ "alg": "SHA-256", "content": sum }]);
            }
            component
        })
        .collect();
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": format!("urn:uuid:{}", uuid::Uuid::now_v7()),
        "version": 1,
        "metadata": {
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "tools": { "components": [{ "type": "application", "name": "cargo xtask sbom" }] },
            "component": { "type": "container", "name": "onedoor", "version": version },
        },
        "components": components,
    }))
}

/// (name, version) → SHA-256 of every registry crate in Cargo.lock.
fn lock_checksums() -> Result<BTreeMap<(String, String), String>> {
    let lock = std::fs::read_to_string(super::root().join("Cargo.lock"))?;
    let mut sums = BTreeMap::new();
    for block in lock.split("[[package]]") {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
                .map(|v| v.trim_end_matches('"').to_string())
        };
        if let (Some(name), Some(version), Some(sum)) = (field("name"), field("version"), field("checksum")) {
            sums.insert((name, version), sum);
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bill_of_materials_lists_the_crates_in_the_image_and_not_the_test_tools() {
        let doc = document().unwrap();
        let components = doc["components"].as_array().unwrap();
        let find = |name: &str| components.iter().find(|c| c["name"] == name);
        for binary in ["intake", "workbench"] {
            assert_eq!(find(binary).unwrap()["type"], "application", "{binary} is one of the image's programs");
        }
        let sqlx = find("sqlx").expect("sqlx is linked into the services");
        assert_eq!(sqlx["purl"], format!("pkg:cargo/sqlx@{}", sqlx["version"].as_str().unwrap()));
        assert_eq!(sqlx["hashes"][0]["alg"], "SHA-256");
        assert_eq!(sqlx["hashes"][0]["content"].as_str().unwrap().len(), 64);
        assert!(sqlx["licenses"][0]["expression"].as_str().unwrap().contains("MIT"));
        // Test tools and the task runner are not in the image.
        for absent in ["xtask", "onedoor-test-support"] {
            assert!(find(absent).is_none(), "{absent} is not in the image");
        }
        // No Windows-only crate: the image is Linux.
        assert!(find("windows-sys").is_none());
    }
}
