use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    courses::run(courses::Config::parse()).await
}
