//! Every place that must know an aid line knows every line of the table
//! (`onedoor_contracts::aid_line::AID_LINES`). Code built from the table
//! (intake's consumers and time limits, the materials catalogue, `xtask up`,
//! the end-to-end stack) needs no check; the places that cannot be built
//! from it (the workspace, the image, compose, the kustomize base, the
//! published schemas, the README) are read here. Adding a line by following
//! `docs/adding-an-aid-line.md` is what makes this test pass.

use onedoor_contracts::aid_line::{AID_LINES, AidLine, INTAKE_SERVICE, services};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Every place a line must appear, with what must be found there.
fn places(line: &AidLine) -> Vec<(String, Vec<String>)> {
    let (s, db, port, port_env) = (line.service, line.database, line.default_port, line.port_env);
    let department = line.department.as_str();
    vec![
        ("Cargo.toml".into(), vec![format!("\"services/{s}\"")]),
        (format!("services/{s}/Cargo.toml"), vec![format!("name = \"{s}\"")]),
        (
            format!("services/{s}/src/lib.rs"),
            vec![format!("Department::{:?}.line()", line.department), "LINE.port_env".into()],
        ),
        ("deploy/Dockerfile".into(), vec![format!("--bin {s} "), format!("target/release/{s}")]),
        (
            "deploy/compose.yaml".into(),
            vec![
                format!("\n  {s}:\n"),
                format!("command: [\"{s}\"]"),
                format!("@postgres:5432/{db}\n"),
                format!("{port_env}: \"{port}\""),
                format!("\"{port}:{port}\""),
            ],
        ),
        ("deploy/postgres/init.sql".into(), vec![format!("CREATE DATABASE {db} ")]),
        ("k8s/base/kustomization.yaml".into(), vec![format!("services/{s}.yaml")]),
        (
            format!("k8s/base/services/{s}.yaml"),
            vec![format!("{port_env}: '{port}'"), format!("containerPort: {port}"), format!(":5432/{db}?")],
        ),
        ("k8s/base/common.yaml".into(), vec![format!("host: {s}."), format!("name: {s}, port: {{number: {port}}}")]),
        ("k8s/base/postgres.yaml".into(), vec![format!("name: {db}\n")]),
        ("schemas/onedoor.intake.referral_issued.v1.schema.json".into(), vec![format!("\"const\": \"{department}\"")]),
        ("README.md".into(), vec![format!("`services/{s}`"), format!("| {department} |")]),
        ("docs/API.md".into(), vec![format!("`{s}`")]),
    ]
}

#[test]
fn every_aid_line_is_known_everywhere_a_line_must_be() {
    let mut missing = Vec::new();
    for line in &AID_LINES {
        for (path, needles) in places(line) {
            let text = read(&path);
            for needle in needles {
                if !text.contains(&needle) {
                    missing.push(format!("{path}: {needle:?} ({} line)", line.department));
                }
            }
        }
    }
    assert!(missing.is_empty(), "aid lines missing (see docs/adding-an-aid-line.md):\n  {}", missing.join("\n  "));
}

#[test]
fn the_deployment_knows_no_service_the_table_does_not() {
    // Beside the table's services runs the workbench, a client of their APIs with no line of its own.
    let known: Vec<&str> = services().iter().map(|s| s.service).chain(["workbench"]).collect();
    let compose = read("deploy/compose.yaml");
    let images: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("test: [\"CMD\", \"")?.strip_suffix("\", \"healthcheck\"]"))
        .collect();
    assert_eq!(images.len(), known.len(), "compose runs exactly the table's services and the workbench: {images:?}");
    for listed in std::fs::read_dir(root().join("k8s/base/services")).unwrap() {
        let name = listed.unwrap().file_name().to_string_lossy().trim_end_matches(".yaml").to_string();
        assert!(known.contains(&name.as_str()), "k8s/base/services/{name}.yaml is not in the table");
    }
    assert!(known.contains(&INTAKE_SERVICE.service));
}
