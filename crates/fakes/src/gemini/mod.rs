//! The fake Gemini API.
pub struct FakeGemini;
pub struct GeminiConfig;
pub async fn run_cli(_args: crate::cli::GeminiArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
