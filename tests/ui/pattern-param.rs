use jobsmith::job;

#[job]
async fn send_reminder((start, end): (i32, i32)) -> Result<(), String> {
    let _ = (start, end);
    Ok(())
}

fn main() {}
