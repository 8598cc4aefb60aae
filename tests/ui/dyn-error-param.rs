use jobsmith::job;

#[job]
async fn report(error: Box<dyn std::error::Error>) -> Result<(), String> {
    let _ = error;
    Ok(())
}

fn main() {}
