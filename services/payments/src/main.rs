use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    payments::run(payments::Config::parse()).await
}
