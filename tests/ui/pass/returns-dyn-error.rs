//! `Box<dyn Error>` (without `+ Send + Sync`) is a fine error type: `perform` turns the result
//! into a string before the future's next await, so the error never crosses threads.
#![deny(warnings)]

use jobsmith::job;

#[job]
async fn report(id: i64) -> Result<(), Box<dyn std::error::Error>> {
    let _ = id;
    Ok(())
}

fn main() {
    let _ = Report { id: 1 };
}
