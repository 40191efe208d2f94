//! The terminal lab.
pub async fn run(_lab: Option<String>) -> color_eyre::Result<()> {
    Ok(())
}
