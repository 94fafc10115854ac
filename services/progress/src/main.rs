use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    progress::run(progress::Config::parse()).await
}
