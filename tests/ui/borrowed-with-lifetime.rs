// One mistake (borrowing), one error: the lifetime parameter is only there for the borrow.
use jobsmith::job;

#[job]
async fn send_reminder<'a>(recipients: &'a [String]) -> Result<(), String> {
    let _ = recipients;
    Ok(())
}

fn main() {}
