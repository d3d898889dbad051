//! `cargo xtask move-dead-letters`: once per installation upgraded past
//! ADR 0017, moves the dead letters of the stream every service used to share
//! into each service's own, where its operators' endpoints list and replay
//! them. No service may reach the shared stream any more, so this runs as
//! the operators' broker user.

use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MoveDeadLettersArgs {
    /// The broker.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// A file holding the operators' nkey seed (`cargo xtask nats-keys` makes
    /// it; `cargo xtask up` prints where its own is).
    #[arg(long)]
    nkey_file: Option<PathBuf>,
    /// The CA that signed the broker's certificate, where it speaks TLS.
    #[arg(long, env = "ONEDOOR_NATS_CA_FILE")]
    ca_file: Option<PathBuf>,
}

pub fn run(args: MoveDeadLettersArgs) -> Result<()> {
    let nkey_seed = match &args.nkey_file {
        Some(file) => {
            Some(std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?.trim().into())
        }
        None => None,
    };
    let credentials = onedoor_messaging::Credentials { nkey_seed, inbox_prefix: None, ca_file: args.ca_file };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let done = runtime.block_on(async {
        let client = onedoor_messaging::connect(&args.nats_url, "operator-move-dead-letters", &credentials).await?;
        let js = async_nats::jetstream::new(client);
        let moved = onedoor_messaging::dead_letter::move_shared(&js, |consumer| {
            onedoor_broker_access::Principal::running(consumer).map(|p| p.service())
        })
        .await?;
        anyhow::Ok(moved)
    })?;
    println!("{} dead letters moved to their services' own streams", done.moved);
    for letter in &done.left {
        println!(
            "left in {}: sequence {} of consumer {:?}, which no service runs",
            onedoor_contracts::SHARED_DEAD_LETTER_STREAM,
            letter.sequence,
            letter.consumer
        );
    }
    Ok(())
}
