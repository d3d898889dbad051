//! `cargo xtask erase --household <id>`: the operators' erasure of a
//! household's personal data at the end of its retention period, through
//! intake's API (`POST /api/v1/admin/households/{id}/erasure`), so it is
//! checked (every case ended, retention over), audited and done once however
//! often it is asked. See services/intake/src/http/erasure.rs.

use anyhow::{Context, Result, bail};
use uuid::Uuid;

#[derive(clap::Args)]
pub struct EraseArgs {
    /// The household, by its id in the register.
    #[arg(long)]
    household: Uuid,
    /// Why its data is erased (recorded in the audit trail).
    #[arg(long, default_value = "保存期限届满")]
    purpose: String,
    /// Intake's API.
    #[arg(long, env = "INTAKE_URL", default_value = "http://127.0.0.1:8080")]
    intake_url: String,
    /// An operator's token from the identity provider; without one, a
    /// development operator token (ONEDOOR_JWT_SECRET, as `cargo xtask token`).
    #[arg(long, env = "ONEDOOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(args: EraseArgs) -> Result<()> {
    let token = match args.token {
        Some(token) => token,
        None => crate::development_token(&onedoor_http_kit::auth::Claims {
            sub: "operator-erase".into(),
            role: onedoor_http_kit::auth::Role::Operator,
            township: None,
            department: None,
            exp: chrono::Utc::now().timestamp() + 600,
        }),
    };
    let url = format!("{}/api/v1/admin/households/{}/erasure", args.intake_url.trim_end_matches('/'), args.household);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (status, body) = runtime.block_on(async {
        let answer = reqwest::Client::new()
            .post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({"purpose": args.purpose}))
            .send()
            .await
            .with_context(|| format!("asking intake at {url}"))?;
        anyhow::Ok((answer.status(), answer.text().await?))
    })?;
    println!("{body}");
    if !status.is_success() {
        bail!("intake refused the erasure ({status})");
    }
    Ok(())
}
