//! The fake YooKassa API.
pub struct FakeYooKassa;
pub struct YooKassaConfig;
pub async fn run_cli(_args: crate::cli::YooKassaArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
