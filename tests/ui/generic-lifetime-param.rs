use jobsmith::job;

pub struct Note<'a>(pub std::borrow::Cow<'a, str>);

#[job]
async fn send_reminder<'a>(note: Note<'a>) -> Result<(), String> {
    let _ = note.0;
    Ok(())
}

fn main() {}
