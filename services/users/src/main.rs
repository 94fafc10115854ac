use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    users::run(users::Config::parse()).await
}
