use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gateway::run(gateway::Config::parse()).await
}
