//! The stored formats are held to their checked-in JSON Schemas: a change to
//! what is stored shows up here, and is made as a new version with an upcaster.

use std::path::Path;

#[test]
fn checked_in_stored_schemas_match_the_stored_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/stored");
    let stale: Vec<String> = onedoor_stored_events::schemas()
        .into_iter()
        .filter(|(file, schema)| {
            std::fs::read_to_string(dir.join(file)).unwrap_or_default() != onedoor_contracts::render_schema(schema)
        })
        .map(|(file, _)| file)
        .collect();
    assert!(
        stale.is_empty(),
        "schemas/stored/ differs from the stored types for {stale:?}. A stored format changes only by a new \
         version with an upcaster (see onedoor-stored-events); then run `cargo xtask schemas`"
    );
}
