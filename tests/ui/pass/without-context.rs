//! A job fn that does not take the context, with no keys at all.
#![deny(warnings)]

use jobsmith::{Job, JobOptions, job};

#[job]
async fn ping(host: String, port: u16) -> Result<(), std::io::Error> {
    let _ = (host, port);
    Ok(())
}

fn main() {
    let _ = Ping { host: "localhost".into(), port: 80 };
    assert_eq!(Ping::OPTIONS, JobOptions::DEFAULT);
    assert!(Ping::NAME.ends_with("::Ping"));
}
